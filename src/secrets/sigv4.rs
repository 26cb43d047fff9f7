//! AWS Signature Version 4, for the JSON APIs of Secrets Manager and SSM.
//!
//! Written out here (HMAC-SHA256 from the `hmac` crate) rather than pulling in an
//! AWS SDK and its async runtime: two POST calls need one signing function.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// Credentials from the standard environment variables.
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The headers to add to a `POST /` request: (name, value) pairs, `authorization` last.
/// `amz_date` is `YYYYMMDDTHHMMSSZ`; `headers` are the other signed headers, lowercase.
pub fn sign(
    credentials: &Credentials,
    region: &str,
    service: &str,
    host: &str,
    amz_date: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<(String, String)> {
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    signed.push(("host".into(), host.into()));
    signed.push(("x-amz-date".into(), amz_date.into()));
    if let Some(token) = &credentials.session_token {
        signed.push(("x-amz-security-token".into(), token.expose().into()));
    }
    signed.sort();
    let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_names = signed
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{signed_names}\n{}",
        hex::encode(Sha256::digest(body))
    );
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", credentials.secret_access_key.expose()).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    let mut out: Vec<(String, String)> = signed
        .into_iter()
        .filter(|(k, _)| k != "host" && !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)))
        .collect();
    out.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_names}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signing key derivation example of the AWS SigV4 documentation.
    #[test]
    fn the_documented_signing_key_is_derived() {
        let mut key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        for part in ["us-east-1", "iam", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        assert_eq!(
            hex::encode(key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn the_authorization_header_names_scope_and_signed_headers() {
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: Secret::new("secret".into()),
            session_token: Some(Secret::new("tok".into())),
        };
        let headers = sign(
            &creds,
            "eu-west-1",
            "ssm",
            "127.0.0.1:4566",
            "20261127T210000Z",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "AmazonSSM.GetParameter"),
            ],
            b"{}",
        );
        let auth = &headers.last().unwrap().1;
        assert!(auth
            .starts_with("AWS4-HMAC-SHA256 Credential=AKID/20261127/eu-west-1/ssm/aws4_request, "));
        assert!(auth.contains(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,"
        ));
        assert!(headers
            .iter()
            .any(|(k, v)| k == "x-amz-security-token" && v == "tok"));
        assert!(!headers.iter().any(|(k, _)| k == "host"));
    }
}
