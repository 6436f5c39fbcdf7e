//! How the `silt` commands reach a secured listener: Kafka's client
//! properties (`--command-config FILE`, the file Kafka's tools and kcat
//! read), TLS toward the broker and a SASL login (PLAIN, SCRAM).
//!
//! Keys read: `security.protocol`; `sasl.mechanism`; `sasl.username` and
//! `sasl.password`, or `sasl.jaas.config` (`... username="u" password="p";`);
//! `ssl.ca.location`, or `ssl.truststore.location` of type PEM (without
//! either, the system's CAs); `ssl.certificate.location` and
//! `ssl.key.location` (or `ssl.keystore.location` of type PEM holding
//! both) for a client certificate. Other keys are ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::config::{SaslMechanism, SecurityProtocol};

/// What is wrong with a client properties file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PropertiesError(String);

/// A SASL login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

/// How to connect: plain or TLS, with or without a SASL login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSecurity {
    pub protocol: SecurityProtocol,
    pub login: Option<Login>,
    /// PEM CA certificates to trust (`None`: the system's).
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain and key.
    pub certificate: Option<(PathBuf, PathBuf)>,
}

impl ClientSecurity {
    /// Reads a client properties file.
    pub fn load(path: &Path) -> Result<ClientSecurity, PropertiesError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PropertiesError(format!("cannot read {}: {e}", path.display())))?;
        ClientSecurity::parse(&text)
    }

    /// Parses client properties (`key=value` lines, `#` comments).
    pub fn parse(text: &str) -> Result<ClientSecurity, PropertiesError> {
        let props: HashMap<&str, &str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
            .filter_map(|l| {
                let (k, v) = l.split_once(['=', ':'])?;
                Some((k.trim(), v.trim()))
            })
            .collect();
        let bad = |message: String| Err(PropertiesError(message));
        let protocol = match props
            .get("security.protocol")
            .map(|p| p.to_ascii_uppercase())
        {
            None => SecurityProtocol::Plaintext,
            Some(p) => match p.as_str() {
                "PLAINTEXT" => SecurityProtocol::Plaintext,
                "SSL" => SecurityProtocol::Ssl,
                "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
                "SASL_SSL" => SecurityProtocol::SaslSsl,
                other => {
                    return bad(format!(
                        "security.protocol {other} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                    ));
                }
            },
        };
        let login = match protocol {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
                let name = props.get("sasl.mechanism").copied().unwrap_or("PLAIN");
                let Some(mechanism) = SaslMechanism::ALL.into_iter().find(|m| m.name() == name)
                else {
                    return bad(format!(
                        "sasl.mechanism {name} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                    ));
                };
                let (username, password) = match (
                    props.get("sasl.username"),
                    props.get("sasl.password"),
                    props.get("sasl.jaas.config"),
                ) {
                    (Some(u), Some(p), _) => (u.to_string(), p.to_string()),
                    (_, _, Some(jaas)) => match (jaas_option(jaas, "username"), jaas_option(jaas, "password")) {
                        (Some(u), Some(p)) => (u, p),
                        _ => return bad("sasl.jaas.config has no username and password".into()),
                    },
                    _ => return bad("a SASL protocol needs sasl.username and sasl.password (or sasl.jaas.config)".into()),
                };
                Some(Login {
                    mechanism,
                    username,
                    password,
                })
            }
            SecurityProtocol::Plaintext | SecurityProtocol::Ssl => None,
        };
        let pem_store = |location: &str, kind: &str| -> Result<Option<PathBuf>, PropertiesError> {
            let Some(path) = props.get(location) else {
                return Ok(None);
            };
            match props.get(kind).map(|t| t.to_ascii_uppercase()) {
                Some(t) if t == "PEM" => Ok(Some(PathBuf::from(path))),
                other => Err(PropertiesError(format!(
                    "{location} must be a PEM file ({kind}=PEM); {} stores are not read",
                    other.as_deref().unwrap_or("JKS")
                ))),
            }
        };
        let ca = match props.get("ssl.ca.location") {
            Some(ca) => Some(PathBuf::from(ca)),
            None => pem_store("ssl.truststore.location", "ssl.truststore.type")?,
        };
        let certificate = match (
            props.get("ssl.certificate.location"),
            props.get("ssl.key.location"),
        ) {
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            _ => pem_store("ssl.keystore.location", "ssl.keystore.type")?.map(|p| (p.clone(), p)),
        };
        Ok(ClientSecurity {
            protocol,
            login,
            ca,
            certificate,
        })
    }

    /// Whether connections use TLS.
    pub fn tls(&self) -> bool {
        matches!(
            self.protocol,
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl
        )
    }

    /// A TLS connector trusting the configured CAs, presenting the client
    /// certificate if there is one.
    pub fn connector(&self) -> Result<TlsConnector, PropertiesError> {
        let read = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
            PropertiesError(format!("cannot read the {what} {}: {e}", path.display()))
        };
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(ca) => {
                for cert in CertificateDer::pem_file_iter(ca).map_err(|e| read("CA", ca, &e))? {
                    let cert = cert.map_err(|e| read("CA", ca, &e))?;
                    roots.add(cert).map_err(|e| read("CA", ca, &e))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PropertiesError(e.to_string()))?
            .with_root_certificates(roots);
        let config = match &self.certificate {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .and_then(|c| c.collect())
                    .map_err(|e| read("client certificate", cert, &e))?;
                let key =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| read("client key", key, &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| PropertiesError(format!("the client certificate and key: {e}")))?
            }
        };
        Ok(TlsConnector::from(Arc::new(config)))
    }
}

/// The server name to check a broker's certificate against (`HOST` of
/// `HOST:PORT`).
pub fn server_name(addr: &str) -> Result<ServerName<'static>, PropertiesError> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| PropertiesError(format!("'{host}' is not a host name: {e}")))
}

/// The value of `key="value"` in a JAAS line.
fn jaas_option(jaas: &str, key: &str) -> Option<String> {
    let start = jaas.find(&format!("{key}=\""))? + key.len() + 2;
    let end = jaas[start..].find('"')?;
    Some(jaas[start..start + end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_properties_kafka_tools_and_librdkafka_use() {
        let java = "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
            sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"s3cret\";\n\
            ssl.truststore.type=PEM\nssl.truststore.location=/etc/ca.pem\n";
        let parsed = ClientSecurity::parse(java).unwrap();
        assert_eq!(parsed.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(
            parsed.login,
            Some(Login {
                mechanism: SaslMechanism::ScramSha512,
                username: "alice".into(),
                password: "s3cret".into()
            })
        );
        assert_eq!(parsed.ca, Some(PathBuf::from("/etc/ca.pem")));
        let rdkafka = "# kcat -F\nsecurity.protocol = sasl_plaintext\nsasl.mechanisms=PLAIN\n\
            sasl.mechanism=PLAIN\nsasl.username=bob\nsasl.password=pw\n";
        let parsed = ClientSecurity::parse(rdkafka).unwrap();
        assert_eq!(parsed.login.as_ref().unwrap().username, "bob");
        assert!(!parsed.tls());
        assert_eq!(
            ClientSecurity::parse("").unwrap(),
            ClientSecurity::default()
        );
        for (bad, message) in [
            ("security.protocol=TLS", "is not PLAINTEXT"),
            ("security.protocol=SASL_SSL", "needs sasl.username"),
            (
                "security.protocol=SSL\nssl.truststore.location=/x.jks",
                "JKS",
            ),
            (
                "security.protocol=SASL_SSL\nsasl.mechanism=GSSAPI",
                "GSSAPI",
            ),
        ] {
            let e = ClientSecurity::parse(bad).unwrap_err().to_string();
            assert!(e.contains(message), "{bad}: {e}");
        }
    }
}
