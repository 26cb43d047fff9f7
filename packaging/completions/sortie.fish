# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sortie_global_optspecs
    string join \n log-format= v/verbose q/quiet h/help V/version
end

function __fish_sortie_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sortie_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sortie_using_subcommand
    set -l cmd (__fish_sortie_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sortie -n "__fish_sortie_needs_command" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_needs_command" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_needs_command" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sortie -n "__fish_sortie_needs_command" -s V -l version -d 'Print version'
complete -c sortie -n "__fish_sortie_needs_command" -f -a "poll" -d 'Run one shot: claim work from the control plane, run it, report it, exit'
complete -c sortie -n "__fish_sortie_needs_command" -f -a "exec" -d 'Run a job spec file locally, without a control plane, and show its log'
complete -c sortie -n "__fish_sortie_needs_command" -f -a "check" -d 'Check configuration, certificates, the control plane and the state dir; claim nothing'
complete -c sortie -n "__fish_sortie_needs_command" -f -a "lambda" -d 'Serve as an AWS Lambda custom runtime: each invocation is one shot (the default when started as `bootstrap` with AWS_LAMBDA_RUNTIME_API set)'
complete -c sortie -n "__fish_sortie_needs_command" -f -a "nodes" -d 'Show the nodes a filter selects from the inventory (to try a filter before a job uses it)'
complete -c sortie -n "__fish_sortie_needs_command" -f -a "discover" -d 'Print the inventory this runner sees, from its configured sources (what `poll --inventory-every` reports)'
complete -c sortie -n "__fish_sortie_needs_command" -f -a "convert" -d 'Print the job spec a Rundeck job (YAML or XML) becomes, what is not carried over, and what it would refuse when it runs'
complete -c sortie -n "__fish_sortie_needs_command" -f -a "spool" -d 'Manage a spool directory (the embedded control plane)'
complete -c sortie -n "__fish_sortie_needs_command" -f -a "status" -d 'Show the last shot and the last jobs this runner ran, from its state dir'
complete -c sortie -n "__fish_sortie_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l server -d 'Control plane: https://HOST[:PORT]/PATH/, http:// to a loopback address, or dir:PATH for the embedded spool directory' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l token-file -d 'File holding the bearer token, at most 32 KiB (the SORTIE_TOKEN variable is read otherwise)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l token-from -d 'Read the bearer token from a secret provider instead: a reference such as aws-ssm:/sortie/token, aws-sm:ID#KEY, bao:PATH#KEY, file:NAME (resolved once, when sortie starts; on Lambda, once per cold start)' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l runner-id -d 'This runner\'s id [default: the host name]' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l tag -d 'A tag this runner offers; jobs may require tags (repeatable; the variable takes a comma-separated list)' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l ca-file -d 'PEM bundle of the CAs to trust for the control plane (replaces the built-in roots)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l client-cert -d 'PEM client certificate chain for mTLS' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l client-key -d 'PEM private key of the client certificate' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l state-dir -d 'Directory for the lock, the job logs in flight and the workspaces [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/sortie, else /var/lib/sortie as root, else ~/.local/state/sortie]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l connect-timeout -d 'Time allowed to open a connection to the control plane' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l request-timeout -d 'Time allowed for one request to the control plane (a long poll adds its wait)' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l kill-grace -d 'Time a stopped step\'s processes get between SIGTERM and SIGKILL' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l sandbox -d 'Confine steps with Landlock to everything but the runner\'s own files (state dir, token, client key, secrets directories): auto (where the kernel has it), required, or off (also allows steps to gain privileges, e.g. with sudo)' -r -f -a "auto\t''
required\t''
off\t''"
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l protect -d 'A further path steps may not touch (repeatable; the variable takes a comma-separated list)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l run-as -d 'Run steps as this user (name or uid) when sortie runs as root. With a state dir, their workspaces are in its work/, which that user alone is let through (an ACL on both); see sortie(1), SANDBOX' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l globals -d 'A file of NAME=VALUE lines: the values of ${globals.NAME} in jobs (Rundeck\'s project globals; `globals.NAME=` and `project.globals.NAME=` lines too)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l plugin-dir -d 'Where plugin steps\' executables and manifests are looked for, in order (repeatable; the variable takes a comma-separated list) [default: `plugins` beside the state dir, then /usr/lib/sortie/plugins]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l secrets-env-prefix -d 'Prefix of the variables `env:NAME` may read (`env:DB` reads PREFIXDB)' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l secrets-dir -d 'Directory `file:NAME` reads from [default: $CREDENTIALS_DIRECTORY]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l secrets-command -d 'Command `cmd:NAME` runs with NAME as its argument (and on stdin); its output is the value' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l secrets-command-timeout -d 'Time the secrets command may take' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l mask-min-length -d 'Shortest value accepted as a secret (shorter ones fail the job rather than mask the log)' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l bao-addr -d 'OpenBao/Vault address for `bao:` and `vault:` [default: $BAO_ADDR, else $VAULT_ADDR]' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l bao-token-file -d 'File holding an OpenBao token' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l bao-role-id-file -d 'File holding an AppRole role id (with --bao-secret-id-file)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l bao-secret-id-file -d 'File holding an AppRole secret id' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l bao-approle-mount -d 'Mount of the AppRole auth method' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l bao-k8s-role -d 'Role for Kubernetes auth (logs in with the service account token)' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l bao-k8s-token-file -d 'Service account token for Kubernetes auth' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l bao-k8s-mount -d 'Mount of the Kubernetes auth method' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l bao-namespace -d 'OpenBao namespace (X-Vault-Namespace)' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l bao-ca-file -d 'PEM bundle of the CAs to trust for OpenBao [default: the --ca-file of the control plane]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l nodes -d 'A Rundeck resource model (YAML, XML or JSON; a directory: each such file in it) with the nodes jobs may dispatch to (repeatable; the variable takes a comma-separated list)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l node-name -d 'The name of the runner\'s own node' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l known-hosts -d 'known_hosts file with the host keys nodes must present (host keys are always checked; a node may also carry its key in an `ssh-host-key` attribute)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l ssh-config -d 'An ssh_config for node connections [default: none, not even ~/.ssh/config]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l ssh-connect-timeout -d 'Time allowed to connect to a node' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l inventory-config -d 'A YAML or JSON file naming the inventory\'s sources in priority order, each with its own timeout (sortie(1), INVENTORY) [default: the runner\'s own node and the --nodes files]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l inventory-every -d 'Report the inventory (`PUT v1/inventory`) after the shot\'s jobs, at most this often (the last report\'s time is kept in the state dir; a failed report is tried again by the next shot)' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l max-jobs -d 'Most jobs to take in this shot. A job is claimed only when it can start at once: with --parallel 1, one after the other' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l history -d 'Jobs kept in the state dir\'s history for `sortie status` (0: none)' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l parallel -d 'Jobs run at once, each in its own workspace and process groups, with its own log and heartbeats' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l wait -d 'Long poll: let the control plane hold the claim this long for work to arrive' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l max-runtime -d 'Upper bound for the whole shot; jobs whose timeout cannot fit are not claimed' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l deadline-reserve -d 'Time kept back from --max-runtime for delivering logs and results: a running job is stopped (and reported interrupted) this long before the shot\'s deadline' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l lock-wait -d 'Wait this long for another shot to release the state dir (0: exit at once)' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l keep-logs -d 'Also keep a copy of each job\'s log as DIR/<id>.ndjson (for CI artifacts)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l delivery-budget -d 'Longest time a shot spends delivering what earlier shots left, before claiming' -r
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l allow-insecure-http -d 'Allow plain http:// to a non-loopback address (the token travels in clear text)'
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l keep-workspace -d 'Keep each job\'s workspace after the job, for debugging (its path is logged)'
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l ssh-agent -d 'Also offer the keys of the ssh-agent at $SSH_AUTH_SOCK'
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l echo-output -d 'Copy each job\'s output to stderr too, every line labelled with its job and step (JSON with --log-format json), for platforms whose log collection reads only stderr'
complete -c sortie -n "__fish_sortie_using_subcommand poll" -l fail-on-job-failure -d 'Exit 1 when a job fails (for CI steps); otherwise a job\'s failure is only reported'
complete -c sortie -n "__fish_sortie_using_subcommand poll" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_using_subcommand poll" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_using_subcommand poll" -s h -l help -d 'Print help'
complete -c sortie -n "__fish_sortie_using_subcommand exec" -s o -l option -d 'Set an option: NAME=VALUE (repeatable; overrides the spec\'s own value)' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l job -d 'Of a Rundeck file with several jobs, the one to run (its name, group/name or uuid)' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l ca-file -d 'PEM bundle of the CAs to trust for scripturl steps [default: the built-in roots]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l kill-grace -d 'Time a stopped step\'s processes get between SIGTERM and SIGKILL' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l sandbox -d 'Confine steps with Landlock to everything but the runner\'s own files (state dir, token, client key, secrets directories): auto (where the kernel has it), required, or off (also allows steps to gain privileges, e.g. with sudo)' -r -f -a "auto\t''
required\t''
off\t''"
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l protect -d 'A further path steps may not touch (repeatable; the variable takes a comma-separated list)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l run-as -d 'Run steps as this user (name or uid) when sortie runs as root. With a state dir, their workspaces are in its work/, which that user alone is let through (an ACL on both); see sortie(1), SANDBOX' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l globals -d 'A file of NAME=VALUE lines: the values of ${globals.NAME} in jobs (Rundeck\'s project globals; `globals.NAME=` and `project.globals.NAME=` lines too)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l plugin-dir -d 'Where plugin steps\' executables and manifests are looked for, in order (repeatable; the variable takes a comma-separated list) [default: `plugins` beside the state dir, then /usr/lib/sortie/plugins]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l secrets-env-prefix -d 'Prefix of the variables `env:NAME` may read (`env:DB` reads PREFIXDB)' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l secrets-dir -d 'Directory `file:NAME` reads from [default: $CREDENTIALS_DIRECTORY]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l secrets-command -d 'Command `cmd:NAME` runs with NAME as its argument (and on stdin); its output is the value' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l secrets-command-timeout -d 'Time the secrets command may take' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l mask-min-length -d 'Shortest value accepted as a secret (shorter ones fail the job rather than mask the log)' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l bao-addr -d 'OpenBao/Vault address for `bao:` and `vault:` [default: $BAO_ADDR, else $VAULT_ADDR]' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l bao-token-file -d 'File holding an OpenBao token' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l bao-role-id-file -d 'File holding an AppRole role id (with --bao-secret-id-file)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l bao-secret-id-file -d 'File holding an AppRole secret id' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l bao-approle-mount -d 'Mount of the AppRole auth method' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l bao-k8s-role -d 'Role for Kubernetes auth (logs in with the service account token)' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l bao-k8s-token-file -d 'Service account token for Kubernetes auth' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l bao-k8s-mount -d 'Mount of the Kubernetes auth method' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l bao-namespace -d 'OpenBao namespace (X-Vault-Namespace)' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l bao-ca-file -d 'PEM bundle of the CAs to trust for OpenBao [default: the --ca-file of the control plane]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l nodes -d 'A Rundeck resource model (YAML, XML or JSON; a directory: each such file in it) with the nodes jobs may dispatch to (repeatable; the variable takes a comma-separated list)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l node-name -d 'The name of the runner\'s own node' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l known-hosts -d 'known_hosts file with the host keys nodes must present (host keys are always checked; a node may also carry its key in an `ssh-host-key` attribute)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l ssh-config -d 'An ssh_config for node connections [default: none, not even ~/.ssh/config]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l ssh-connect-timeout -d 'Time allowed to connect to a node' -r
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l check -d 'Check the job without running it: its fields (with a hint for a misspelt one), its options and what each step would refuse; exit 0 if it would run, 78 if not'
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l keep-workspace -d 'Keep each job\'s workspace after the job, for debugging (its path is logged)'
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l ssh-agent -d 'Also offer the keys of the ssh-agent at $SSH_AUTH_SOCK'
complete -c sortie -n "__fish_sortie_using_subcommand exec" -l allow-insecure-http -d 'Allow plain http:// to a non-loopback secret store or scripturl host'
complete -c sortie -n "__fish_sortie_using_subcommand exec" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_using_subcommand exec" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_using_subcommand exec" -s h -l help -d 'Print help'
complete -c sortie -n "__fish_sortie_using_subcommand check" -l server -d 'Control plane: https://HOST[:PORT]/PATH/, http:// to a loopback address, or dir:PATH for the embedded spool directory' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l token-file -d 'File holding the bearer token, at most 32 KiB (the SORTIE_TOKEN variable is read otherwise)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l token-from -d 'Read the bearer token from a secret provider instead: a reference such as aws-ssm:/sortie/token, aws-sm:ID#KEY, bao:PATH#KEY, file:NAME (resolved once, when sortie starts; on Lambda, once per cold start)' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l runner-id -d 'This runner\'s id [default: the host name]' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l tag -d 'A tag this runner offers; jobs may require tags (repeatable; the variable takes a comma-separated list)' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l ca-file -d 'PEM bundle of the CAs to trust for the control plane (replaces the built-in roots)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l client-cert -d 'PEM client certificate chain for mTLS' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l client-key -d 'PEM private key of the client certificate' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l state-dir -d 'Directory for the lock, the job logs in flight and the workspaces [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/sortie, else /var/lib/sortie as root, else ~/.local/state/sortie]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l connect-timeout -d 'Time allowed to open a connection to the control plane' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l request-timeout -d 'Time allowed for one request to the control plane (a long poll adds its wait)' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l secrets-env-prefix -d 'Prefix of the variables `env:NAME` may read (`env:DB` reads PREFIXDB)' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l secrets-dir -d 'Directory `file:NAME` reads from [default: $CREDENTIALS_DIRECTORY]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l secrets-command -d 'Command `cmd:NAME` runs with NAME as its argument (and on stdin); its output is the value' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l secrets-command-timeout -d 'Time the secrets command may take' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l mask-min-length -d 'Shortest value accepted as a secret (shorter ones fail the job rather than mask the log)' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l bao-addr -d 'OpenBao/Vault address for `bao:` and `vault:` [default: $BAO_ADDR, else $VAULT_ADDR]' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l bao-token-file -d 'File holding an OpenBao token' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l bao-role-id-file -d 'File holding an AppRole role id (with --bao-secret-id-file)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l bao-secret-id-file -d 'File holding an AppRole secret id' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l bao-approle-mount -d 'Mount of the AppRole auth method' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l bao-k8s-role -d 'Role for Kubernetes auth (logs in with the service account token)' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l bao-k8s-token-file -d 'Service account token for Kubernetes auth' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l bao-k8s-mount -d 'Mount of the Kubernetes auth method' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l bao-namespace -d 'OpenBao namespace (X-Vault-Namespace)' -r
complete -c sortie -n "__fish_sortie_using_subcommand check" -l bao-ca-file -d 'PEM bundle of the CAs to trust for OpenBao [default: the --ca-file of the control plane]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand check" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_using_subcommand check" -l allow-insecure-http -d 'Allow plain http:// to a non-loopback address (the token travels in clear text)'
complete -c sortie -n "__fish_sortie_using_subcommand check" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_using_subcommand check" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_using_subcommand check" -s h -l help -d 'Print help'
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l server -d 'Control plane: https://HOST[:PORT]/PATH/, http:// to a loopback address, or dir:PATH for the embedded spool directory' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l token-file -d 'File holding the bearer token, at most 32 KiB (the SORTIE_TOKEN variable is read otherwise)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l token-from -d 'Read the bearer token from a secret provider instead: a reference such as aws-ssm:/sortie/token, aws-sm:ID#KEY, bao:PATH#KEY, file:NAME (resolved once, when sortie starts; on Lambda, once per cold start)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l runner-id -d 'This runner\'s id [default: the host name]' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l tag -d 'A tag this runner offers; jobs may require tags (repeatable; the variable takes a comma-separated list)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l ca-file -d 'PEM bundle of the CAs to trust for the control plane (replaces the built-in roots)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l client-cert -d 'PEM client certificate chain for mTLS' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l client-key -d 'PEM private key of the client certificate' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l state-dir -d 'Directory for the lock, the job logs in flight and the workspaces [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/sortie, else /var/lib/sortie as root, else ~/.local/state/sortie]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l connect-timeout -d 'Time allowed to open a connection to the control plane' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l request-timeout -d 'Time allowed for one request to the control plane (a long poll adds its wait)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l kill-grace -d 'Time a stopped step\'s processes get between SIGTERM and SIGKILL' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l sandbox -d 'Confine steps with Landlock to everything but the runner\'s own files (state dir, token, client key, secrets directories): auto (where the kernel has it), required, or off (also allows steps to gain privileges, e.g. with sudo)' -r -f -a "auto\t''
required\t''
off\t''"
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l protect -d 'A further path steps may not touch (repeatable; the variable takes a comma-separated list)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l run-as -d 'Run steps as this user (name or uid) when sortie runs as root. With a state dir, their workspaces are in its work/, which that user alone is let through (an ACL on both); see sortie(1), SANDBOX' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l globals -d 'A file of NAME=VALUE lines: the values of ${globals.NAME} in jobs (Rundeck\'s project globals; `globals.NAME=` and `project.globals.NAME=` lines too)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l plugin-dir -d 'Where plugin steps\' executables and manifests are looked for, in order (repeatable; the variable takes a comma-separated list) [default: `plugins` beside the state dir, then /usr/lib/sortie/plugins]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l secrets-env-prefix -d 'Prefix of the variables `env:NAME` may read (`env:DB` reads PREFIXDB)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l secrets-dir -d 'Directory `file:NAME` reads from [default: $CREDENTIALS_DIRECTORY]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l secrets-command -d 'Command `cmd:NAME` runs with NAME as its argument (and on stdin); its output is the value' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l secrets-command-timeout -d 'Time the secrets command may take' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l mask-min-length -d 'Shortest value accepted as a secret (shorter ones fail the job rather than mask the log)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l bao-addr -d 'OpenBao/Vault address for `bao:` and `vault:` [default: $BAO_ADDR, else $VAULT_ADDR]' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l bao-token-file -d 'File holding an OpenBao token' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l bao-role-id-file -d 'File holding an AppRole role id (with --bao-secret-id-file)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l bao-secret-id-file -d 'File holding an AppRole secret id' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l bao-approle-mount -d 'Mount of the AppRole auth method' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l bao-k8s-role -d 'Role for Kubernetes auth (logs in with the service account token)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l bao-k8s-token-file -d 'Service account token for Kubernetes auth' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l bao-k8s-mount -d 'Mount of the Kubernetes auth method' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l bao-namespace -d 'OpenBao namespace (X-Vault-Namespace)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l bao-ca-file -d 'PEM bundle of the CAs to trust for OpenBao [default: the --ca-file of the control plane]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l nodes -d 'A Rundeck resource model (YAML, XML or JSON; a directory: each such file in it) with the nodes jobs may dispatch to (repeatable; the variable takes a comma-separated list)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l node-name -d 'The name of the runner\'s own node' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l known-hosts -d 'known_hosts file with the host keys nodes must present (host keys are always checked; a node may also carry its key in an `ssh-host-key` attribute)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l ssh-config -d 'An ssh_config for node connections [default: none, not even ~/.ssh/config]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l ssh-connect-timeout -d 'Time allowed to connect to a node' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l inventory-config -d 'A YAML or JSON file naming the inventory\'s sources in priority order, each with its own timeout (sortie(1), INVENTORY) [default: the runner\'s own node and the --nodes files]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l inventory-every -d 'Report the inventory (`PUT v1/inventory`) after the shot\'s jobs, at most this often (the last report\'s time is kept in the state dir; a failed report is tried again by the next shot)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l max-jobs -d 'Most jobs to take in this shot. A job is claimed only when it can start at once: with --parallel 1, one after the other' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l history -d 'Jobs kept in the state dir\'s history for `sortie status` (0: none)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l parallel -d 'Jobs run at once, each in its own workspace and process groups, with its own log and heartbeats' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l wait -d 'Long poll: let the control plane hold the claim this long for work to arrive' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l max-runtime -d 'Upper bound for the whole shot; jobs whose timeout cannot fit are not claimed' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l deadline-reserve -d 'Time kept back from --max-runtime for delivering logs and results: a running job is stopped (and reported interrupted) this long before the shot\'s deadline' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l lock-wait -d 'Wait this long for another shot to release the state dir (0: exit at once)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l keep-logs -d 'Also keep a copy of each job\'s log as DIR/<id>.ndjson (for CI artifacts)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l delivery-budget -d 'Longest time a shot spends delivering what earlier shots left, before claiming' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l allowed-tags -d 'Tags an invocation\'s event may ask for instead of --tag (comma-separated)' -r
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l allow-insecure-http -d 'Allow plain http:// to a non-loopback address (the token travels in clear text)'
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l keep-workspace -d 'Keep each job\'s workspace after the job, for debugging (its path is logged)'
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l ssh-agent -d 'Also offer the keys of the ssh-agent at $SSH_AUTH_SOCK'
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l echo-output -d 'Copy each job\'s output to stderr too, every line labelled with its job and step (JSON with --log-format json), for platforms whose log collection reads only stderr'
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -l fail-on-job-failure -d 'Exit 1 when a job fails (for CI steps); otherwise a job\'s failure is only reported'
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_using_subcommand lambda" -s h -l help -d 'Print help'
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l filter -d 'Rundeck\'s node filter (`tags: web+prod`, `name: db.*`, `!hostname: test.*`)' -r
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l exclude-filter -d 'A filter whose nodes are left out' -r
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l exclude-precedence -d 'With both filters, a node matching both is left out (false: kept)' -r -f -a "true\t''
false\t''"
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l nodes -d 'A Rundeck resource model (YAML, XML or JSON; a directory: each such file in it) with the nodes jobs may dispatch to (repeatable; the variable takes a comma-separated list)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l node-name -d 'The name of the runner\'s own node' -r
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l known-hosts -d 'known_hosts file with the host keys nodes must present (host keys are always checked; a node may also carry its key in an `ssh-host-key` attribute)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l ssh-config -d 'An ssh_config for node connections [default: none, not even ~/.ssh/config]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l ssh-connect-timeout -d 'Time allowed to connect to a node' -r
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l json -d 'Print Rundeck resource JSON instead of a table'
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -l ssh-agent -d 'Also offer the keys of the ssh-agent at $SSH_AUTH_SOCK'
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_using_subcommand nodes" -s h -l help -d 'Print help'
complete -c sortie -n "__fish_sortie_using_subcommand discover" -l format -d 'How to print it: Rundeck resource JSON or YAML, or a table' -r -f -a "json\t''
yaml\t''
table\t''"
complete -c sortie -n "__fish_sortie_using_subcommand discover" -l tag -d 'A tag of the runner\'s own node (repeatable; the variable takes a comma-separated list)' -r
complete -c sortie -n "__fish_sortie_using_subcommand discover" -l inventory-config -d 'A YAML or JSON file naming the inventory\'s sources in priority order, each with its own timeout (sortie(1), INVENTORY) [default: the runner\'s own node and the --nodes files]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand discover" -l nodes -d 'A Rundeck resource model (YAML, XML or JSON; a directory: each such file in it) with the nodes jobs may dispatch to (repeatable; the variable takes a comma-separated list)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand discover" -l node-name -d 'The name of the runner\'s own node' -r
complete -c sortie -n "__fish_sortie_using_subcommand discover" -l known-hosts -d 'known_hosts file with the host keys nodes must present (host keys are always checked; a node may also carry its key in an `ssh-host-key` attribute)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand discover" -l ssh-config -d 'An ssh_config for node connections [default: none, not even ~/.ssh/config]' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand discover" -l ssh-connect-timeout -d 'Time allowed to connect to a node' -r
complete -c sortie -n "__fish_sortie_using_subcommand discover" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_using_subcommand discover" -l ssh-agent -d 'Also offer the keys of the ssh-agent at $SSH_AUTH_SOCK'
complete -c sortie -n "__fish_sortie_using_subcommand discover" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_using_subcommand discover" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_using_subcommand discover" -s h -l help -d 'Print help'
complete -c sortie -n "__fish_sortie_using_subcommand convert" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_using_subcommand convert" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_using_subcommand convert" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_using_subcommand convert" -s h -l help -d 'Print help'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and not __fish_seen_subcommand_from init help" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_using_subcommand spool; and not __fish_seen_subcommand_from init help" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and not __fish_seen_subcommand_from init help" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and not __fish_seen_subcommand_from init help" -s h -l help -d 'Print help'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and not __fish_seen_subcommand_from init help" -f -a "init" -d 'Create a spool: PATH and its pending/, claimed/, done/ and failed/ directories'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and not __fish_seen_subcommand_from init help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and __fish_seen_subcommand_from init" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_using_subcommand spool; and __fish_seen_subcommand_from init" -l log-multiline -d 'Offer the log format\'s multi-line extension: output events in done/*/log.ndjson may hold several lines each (a smaller log, written faster). Only for a spool whose reader takes them: it creates PATH/log-multiline'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and __fish_seen_subcommand_from init" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and __fish_seen_subcommand_from init" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and __fish_seen_subcommand_from help" -f -a "init" -d 'Create a spool: PATH and its pending/, claimed/, done/ and failed/ directories'
complete -c sortie -n "__fish_sortie_using_subcommand spool; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sortie -n "__fish_sortie_using_subcommand status" -l state-dir -d 'The runner\'s state dir (the default is poll\'s)' -r -F
complete -c sortie -n "__fish_sortie_using_subcommand status" -l last -d 'Jobs to show, newest last' -r
complete -c sortie -n "__fish_sortie_using_subcommand status" -l log-format -d 'Format of sortie\'s own diagnostics on stderr (and of `exec`\'s job log on stdout)' -r -f -a "text\t''
json\t''"
complete -c sortie -n "__fish_sortie_using_subcommand status" -l json -d 'Print JSON instead of a table'
complete -c sortie -n "__fish_sortie_using_subcommand status" -s v -l verbose -d 'More diagnostics (-v: debug, -vv: trace)'
complete -c sortie -n "__fish_sortie_using_subcommand status" -s q -l quiet -d 'Only errors on stderr'
complete -c sortie -n "__fish_sortie_using_subcommand status" -s h -l help -d 'Print help'
complete -c sortie -n "__fish_sortie_using_subcommand help; and not __fish_seen_subcommand_from poll exec check lambda nodes discover convert spool status help" -f -a "poll" -d 'Run one shot: claim work from the control plane, run it, report it, exit'
complete -c sortie -n "__fish_sortie_using_subcommand help; and not __fish_seen_subcommand_from poll exec check lambda nodes discover convert spool status help" -f -a "exec" -d 'Run a job spec file locally, without a control plane, and show its log'
complete -c sortie -n "__fish_sortie_using_subcommand help; and not __fish_seen_subcommand_from poll exec check lambda nodes discover convert spool status help" -f -a "check" -d 'Check configuration, certificates, the control plane and the state dir; claim nothing'
complete -c sortie -n "__fish_sortie_using_subcommand help; and not __fish_seen_subcommand_from poll exec check lambda nodes discover convert spool status help" -f -a "lambda" -d 'Serve as an AWS Lambda custom runtime: each invocation is one shot (the default when started as `bootstrap` with AWS_LAMBDA_RUNTIME_API set)'
complete -c sortie -n "__fish_sortie_using_subcommand help; and not __fish_seen_subcommand_from poll exec check lambda nodes discover convert spool status help" -f -a "nodes" -d 'Show the nodes a filter selects from the inventory (to try a filter before a job uses it)'
complete -c sortie -n "__fish_sortie_using_subcommand help; and not __fish_seen_subcommand_from poll exec check lambda nodes discover convert spool status help" -f -a "discover" -d 'Print the inventory this runner sees, from its configured sources (what `poll --inventory-every` reports)'
complete -c sortie -n "__fish_sortie_using_subcommand help; and not __fish_seen_subcommand_from poll exec check lambda nodes discover convert spool status help" -f -a "convert" -d 'Print the job spec a Rundeck job (YAML or XML) becomes, what is not carried over, and what it would refuse when it runs'
complete -c sortie -n "__fish_sortie_using_subcommand help; and not __fish_seen_subcommand_from poll exec check lambda nodes discover convert spool status help" -f -a "spool" -d 'Manage a spool directory (the embedded control plane)'
complete -c sortie -n "__fish_sortie_using_subcommand help; and not __fish_seen_subcommand_from poll exec check lambda nodes discover convert spool status help" -f -a "status" -d 'Show the last shot and the last jobs this runner ran, from its state dir'
complete -c sortie -n "__fish_sortie_using_subcommand help; and not __fish_seen_subcommand_from poll exec check lambda nodes discover convert spool status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sortie -n "__fish_sortie_using_subcommand help; and __fish_seen_subcommand_from spool" -f -a "init" -d 'Create a spool: PATH and its pending/, claimed/, done/ and failed/ directories'
