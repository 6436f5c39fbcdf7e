//! `silt user create|list|delete`: users' SCRAM credentials, through
//! AlterUserScramCredentials and DescribeUserScramCredentials (as
//! `kafka-configs.sh --entity-type users` manages them). The password is
//! salted and hashed here; the broker never sees it.

use std::io::Read;

use anyhow::{Context, bail};
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use silt::meta::ScramMechanism;
use silt::security::scram::random_bytes;

use super::{Cluster, check};

/// Creates (or replaces) `user`'s credentials for `mechanisms`, with the
/// password read from standard input (its first line).
pub async fn create(
    cluster: &mut Cluster,
    user: &str,
    mechanisms: &[ScramMechanism],
    iterations: u32,
) -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let password = input.lines().next().unwrap_or_default();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    let upsertions = mechanisms
        .iter()
        .map(|&m| {
            let salt = random_bytes(32);
            let salted = m.salted_password(password.as_bytes(), &salt, iterations);
            ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_string(user.into()))
                .with_mechanism(m.code())
                .with_iterations(iterations as i32)
                .with_salt(Bytes::from(salt))
                .with_salted_password(Bytes::from(salted))
        })
        .collect();
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(upsertions);
    let response = cluster.any().call(request, 0).await?;
    check_results(&response, &format!("cannot create user '{user}'"))?;
    let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
    println!("Created user '{user}' ({})", names.join(", "));
    Ok(())
}

/// Prints every user with its mechanisms and iteration counts.
pub async fn list(cluster: &mut Cluster) -> anyhow::Result<()> {
    let request = DescribeUserScramCredentialsRequest::default().with_users(None);
    let response = cluster.any().call(request, 0).await?;
    check(response.error_code, "cannot list users")?;
    println!("User\tMechanism\tIterations");
    for user in &response.results {
        check(
            user.error_code,
            &format!("cannot describe user '{}'", user.user),
        )?;
        for info in &user.credential_infos {
            let mechanism = ScramMechanism::from_code(info.mechanism).map_or_else(
                || format!("unknown ({})", info.mechanism),
                |m| m.name().into(),
            );
            println!("{}\t{mechanism}\t{}", user.user, info.iterations);
        }
    }
    Ok(())
}

/// Deletes `user`'s credentials for `mechanisms`.
pub async fn delete(
    cluster: &mut Cluster,
    user: &str,
    mechanisms: &[ScramMechanism],
) -> anyhow::Result<()> {
    let deletions = mechanisms
        .iter()
        .map(|m| {
            ScramCredentialDeletion::default()
                .with_name(StrBytes::from_string(user.into()))
                .with_mechanism(m.code())
        })
        .collect();
    let request = AlterUserScramCredentialsRequest::default().with_deletions(deletions);
    let response = cluster.any().call(request, 0).await?;
    check_results(&response, &format!("cannot delete user '{user}'"))?;
    println!("Deleted user '{user}'");
    Ok(())
}

fn check_results(response: &AlterUserScramCredentialsResponse, what: &str) -> anyhow::Result<()> {
    for result in &response.results {
        if result.error_code != 0 {
            let message = result.error_message.as_deref().unwrap_or_default();
            check(result.error_code, &format!("{what}: {message}"))?;
        }
    }
    Ok(())
}
