//! The AWS shared config and credentials files (`~/.aws/config`,
//! `~/.aws/credentials`), which `object_store` does not read. The profile
//! named by `AWS_PROFILE` (or `default`) supplies static keys, region and
//! endpoint wherever the environment does not, as the AWS CLI does.
//! Profiles that get credentials another way (roles, SSO, processes) are
//! refused by name rather than silently ignored.

use std::collections::HashMap;
use std::path::PathBuf;

use object_store::aws::AmazonS3ConfigKey;

/// Profile settings Silt understands, and the store setting each becomes.
const SETTINGS: [(&str, AmazonS3ConfigKey); 5] = [
    ("aws_access_key_id", AmazonS3ConfigKey::AccessKeyId),
    ("aws_secret_access_key", AmazonS3ConfigKey::SecretAccessKey),
    ("aws_session_token", AmazonS3ConfigKey::Token),
    ("region", AmazonS3ConfigKey::Region),
    ("endpoint_url", AmazonS3ConfigKey::Endpoint),
];

/// Profile settings naming a credential source other than static keys.
const UNSUPPORTED: [&str; 5] = [
    "role_arn",
    "credential_process",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
];

/// The store settings from the selected profile; `env` looks up
/// environment variables. Empty when no profile was asked for and the
/// `default` one does not exist.
pub fn settings(
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(AmazonS3ConfigKey, String)>, String> {
    let named = env("AWS_PROFILE");
    let name = named.clone().unwrap_or_else(|| "default".into());
    let home = env("HOME").map(PathBuf::from).unwrap_or_default();
    let config_file = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let credentials_file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let read = |path: &PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    // The config file names profiles `[profile NAME]`, except `[default]`.
    let config_section = if name == "default" {
        name.clone()
    } else {
        format!("profile {name}")
    };
    let config = section(&read(&config_file), &config_section);
    let credentials = section(&read(&credentials_file), &name);
    let profile = match (config, credentials) {
        (None, None) if named.is_none() => return Ok(Vec::new()),
        (None, None) => {
            return Err(format!(
                "AWS profile '{name}' is in neither {} nor {}",
                config_file.display(),
                credentials_file.display()
            ));
        }
        // Keys in the credentials file win over the config file's.
        (config, credentials) => {
            let mut profile = config.unwrap_or_default();
            profile.extend(credentials.unwrap_or_default());
            profile
        }
    };
    let env_has_keys = env("AWS_ACCESS_KEY_ID").is_some();
    if !env_has_keys
        && !profile.contains_key("aws_access_key_id")
        && let Some(key) = UNSUPPORTED.iter().find(|k| profile.contains_key(**k))
    {
        return Err(format!(
            "AWS profile '{name}' gets credentials through '{key}', which Silt does not support: \
             give it aws_access_key_id/aws_secret_access_key or set AWS_ACCESS_KEY_ID"
        ));
    }
    Ok(SETTINGS
        .into_iter()
        .filter(|(name, _)| !(env_has_keys && name.starts_with("aws_")))
        .filter_map(|(name, key)| profile.get(name).map(|v| (key, v.clone())))
        .collect())
}

/// The `key = value` lines of INI section `[name]`; `None` if absent.
/// Indented lines (nested service settings) are skipped.
fn section(text: &str, name: &str) -> Option<HashMap<String, String>> {
    let mut found = None;
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.trim() == name;
            if inside {
                found.get_or_insert_with(HashMap::new);
            }
        } else if inside && let Some((key, value)) = line.split_once('=') {
            let values = found.get_or_insert_with(HashMap::new);
            values.insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the two files and returns an environment pointing at them.
    fn files(
        dir: &std::path::Path,
        config: &str,
        credentials: &str,
        vars: &[(&str, &str)],
    ) -> HashMap<String, String> {
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(dir.join("credentials"), credentials).unwrap();
        let mut env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let path = |f: &str| dir.join(f).display().to_string();
        env.insert("AWS_CONFIG_FILE".into(), path("config"));
        env.insert("AWS_SHARED_CREDENTIALS_FILE".into(), path("credentials"));
        env
    }

    fn get(env: &HashMap<String, String>) -> Result<Vec<(AmazonS3ConfigKey, String)>, String> {
        settings(|k| env.get(k).cloned())
    }

    const CONFIG: &str = "\
# comment
[default]
region = eu-west-1

[profile dev]
region = us-west-2
endpoint_url = http://127.0.0.1:9000
aws_access_key_id = from-config
s3 =
  addressing_style = path

[profile sso]
sso_session = corp
";
    const CREDENTIALS: &str = "\
[default]
aws_access_key_id = AKDEFAULT
aws_secret_access_key = secret-default

[dev]
aws_access_key_id = AKDEV
aws_secret_access_key = secret-dev
";

    #[test]
    fn the_named_profile_merges_both_files_with_credentials_winning() {
        let dir = tempfile::tempdir().unwrap();
        let env = files(dir.path(), CONFIG, CREDENTIALS, &[("AWS_PROFILE", "dev")]);
        let got = get(&env).unwrap();
        assert_eq!(
            got,
            vec![
                (AmazonS3ConfigKey::AccessKeyId, "AKDEV".to_string()),
                (AmazonS3ConfigKey::SecretAccessKey, "secret-dev".into()),
                (AmazonS3ConfigKey::Region, "us-west-2".into()),
                (AmazonS3ConfigKey::Endpoint, "http://127.0.0.1:9000".into()),
            ]
        );
    }

    #[test]
    fn default_profile_is_used_when_none_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let env = files(dir.path(), CONFIG, CREDENTIALS, &[]);
        let got = get(&env).unwrap();
        assert!(got.contains(&(AmazonS3ConfigKey::AccessKeyId, "AKDEFAULT".into())));
        assert!(got.contains(&(AmazonS3ConfigKey::Region, "eu-west-1".into())));
    }

    #[test]
    fn environment_keys_keep_the_profile_keys_out() {
        let dir = tempfile::tempdir().unwrap();
        let vars = [("AWS_PROFILE", "dev"), ("AWS_ACCESS_KEY_ID", "AKENV")];
        let env = files(dir.path(), CONFIG, CREDENTIALS, &vars);
        let got = get(&env).unwrap();
        assert!(got.iter().all(|(k, _)| !matches!(
            k,
            AmazonS3ConfigKey::AccessKeyId | AmazonS3ConfigKey::SecretAccessKey
        )));
        assert!(got.contains(&(AmazonS3ConfigKey::Region, "us-west-2".into())));
    }

    #[test]
    fn missing_and_unsupported_profiles_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let env = files(dir.path(), CONFIG, CREDENTIALS, &[("AWS_PROFILE", "nope")]);
        assert!(
            get(&env)
                .unwrap_err()
                .contains("AWS profile 'nope' is in neither")
        );
        let env = files(dir.path(), CONFIG, CREDENTIALS, &[("AWS_PROFILE", "sso")]);
        assert!(get(&env).unwrap_err().contains("'sso_session'"));
        // No files and no profile asked for: nothing, no error.
        let env = files(dir.path(), "", "", &[]);
        assert_eq!(get(&env).unwrap(), vec![]);
    }
}
