//! A PostgreSQL cluster of the suite's own: `initdb` into a temp dir and the
//! server on a Unix socket there, no TCP port, no system service. One cluster per
//! test process, started on first use; each test gets a database of its own.
//!
//! The server cannot run as root, so under root it runs as `nobody`. It is
//! started with a parent-death signal from a thread that never ends, so it
//! stops (SIGQUIT: immediate shutdown) when the test process exits, however it
//! exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Cluster {
    dir: PathBuf,
    /// The server's port: its Unix socket's name, and TCP on 127.0.0.1 with TLS.
    port: u16,
}

/// The PostgreSQL server binaries (Debian keeps them in /usr/lib/postgresql/VERSION/bin).
fn bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed: run `sh tests/peers/install.sh` first")
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("no {name} under /usr/lib/postgresql/*/bin"))
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `cmd` as the user the cluster runs as, ending with its parent (`pdeath`).
fn as_cluster_user(program: &Path, pdeath: bool) -> Command {
    let mut cmd = Command::new("setpriv");
    if as_root() {
        cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
    }
    if pdeath {
        cmd.args(["--pdeathsig", "SIGQUIT"]);
    }
    cmd.arg("--").arg(program);
    cmd
}

pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        remove_stale_clusters();
        let dir = std::env::temp_dir().join(format!("sortie-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if as_root() {
            let status = Command::new("chown")
                .args(["nobody:nogroup"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = dir.join("data");
        let out = as_cluster_user(&bin("initdb"), false)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // TLS on TCP, with a certificate from a CA of the test's own.
        let ca = sortie_control_plane::pki::Authority::generate("test PostgreSQL CA").unwrap();
        let pair = ca.server(&["localhost", "127.0.0.1"]).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(dir.join("server.pem"), &pair.cert_pem).unwrap();
        std::fs::write(dir.join("server.key"), &pair.key_pem).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        if as_root() {
            let status = Command::new("chown")
                .arg("nobody:nogroup")
                .arg(dir.join("server.key"))
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = as_cluster_user(&bin("postgres"), true);
        server
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir)
            .arg("-p")
            .arg(port.to_string())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
            ])
            .args(["-c", "ssl=on"])
            .arg("-c")
            .arg(format!(
                "ssl_cert_file={}",
                dir.join("server.pem").display()
            ))
            .arg("-c")
            .arg(format!("ssl_key_file={}", dir.join("server.key").display()))
            // Nothing here tests PostgreSQL's own durability: skip its fsyncs.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(
                    std::env::temp_dir().join(format!("sortie-pg-{}.log", std::process::id())),
                )
                .unwrap(),
            );
        // The thread that starts the server never ends: its parent-death
        // signal fires when the whole test process does.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let child = server.spawn();
            tx.send(child.map(|c| c.id())).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap().expect("starting postgres");
        let cluster = Cluster { dir, port };
        let until = Instant::now() + Duration::from_secs(30);
        while cluster.client("postgres").is_err() {
            assert!(Instant::now() < until, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    })
}

/// The clusters of test processes that have ended (their servers ended with them).
fn remove_stale_clusters() {
    for entry in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("sortie-pg-") else {
            continue;
        };
        let pid = pid.trim_end_matches(".log");
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

impl Cluster {
    /// The connection string of database `name`, on the Unix socket.
    pub fn url(&self, name: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={name}",
            self.dir.display(),
            self.port
        )
    }

    /// The same database over TCP on 127.0.0.1, where the server offers TLS.
    pub fn tcp_url(&self, socket_url: &str) -> String {
        socket_url.replace(&format!("host={}", self.dir.display()), "host=127.0.0.1")
    }

    /// The CA of the server's TLS certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn client(&self, name: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Client::connect(&self.url(name), postgres::NoTls)
    }

    /// A new, empty database; its connection string.
    pub fn database(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("t{}", N.fetch_add(1, Ordering::Relaxed));
        let mut admin = self.client("postgres").unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.url(&name)
    }

    /// Run SQL in database `url` (to look at what the store keeps).
    pub fn query(&self, url: &str, sql: &str) -> Vec<postgres::Row> {
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        client.query(sql, &[]).unwrap()
    }
}
