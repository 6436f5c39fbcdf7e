//! DescribeUserScramCredentials and AlterUserScramCredentials: users'
//! SCRAM credentials, as `kafka-configs.sh --entity-type users` and
//! `silt user` manage them. Clients send salted passwords, never
//! passwords; the broker keeps only the keys derived from them.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::meta::{ScramCredential, ScramMechanism};
use crate::security::scram::{MAX_ITERATIONS, MIN_ITERATIONS};

pub async fn describe(
    broker: &Broker,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let stored = match broker.credentials().scram_credentials().await {
        Ok(stored) => stored,
        Err(e) => {
            return DescribeUserScramCredentialsResponse::default()
                .with_error_code(e.response_error().code())
                .with_error_message(Some(str_bytes(&e.to_string())));
        }
    };
    let mut by_user: BTreeMap<String, Vec<CredentialInfo>> = BTreeMap::new();
    for c in stored {
        by_user.entry(c.user).or_default().push(
            CredentialInfo::default()
                .with_mechanism(c.mechanism.code())
                .with_iterations(c.iterations as i32),
        );
    }
    let asked: Vec<String> = request
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    let results = if asked.is_empty() {
        by_user
            .into_iter()
            .map(|(user, infos)| result(&user, None).with_credential_infos(infos))
            .collect()
    } else {
        let mut seen = BTreeSet::new();
        let duplicates: BTreeSet<&String> = asked.iter().filter(|u| !seen.insert(*u)).collect();
        let mut answered = BTreeSet::new();
        asked
            .iter()
            .filter(|u| answered.insert(*u))
            .map(|user| {
                if duplicates.contains(user) {
                    let e = (ResponseError::DuplicateResource, "the user is named twice");
                    return result(user, Some(e));
                }
                match by_user.get(user) {
                    Some(infos) => result(user, None).with_credential_infos(infos.clone()),
                    None => {
                        let e = (
                            ResponseError::ResourceNotFound,
                            "Attempt to describe a user credential that does not exist",
                        );
                        result(user, Some(e))
                    }
                }
            })
            .collect()
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

fn result(user: &str, error: Option<(ResponseError, &str)>) -> DescribeUserScramCredentialsResult {
    let result = DescribeUserScramCredentialsResult::default().with_user(str_bytes(user));
    match error {
        None => result,
        Some((code, message)) => result
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message))),
    }
}

/// One requested change of a user's credentials.
enum Alteration {
    Upsert(ScramCredential),
    Delete(ScramMechanism),
}

pub async fn alter(
    broker: &Broker,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Each user's changes are checked together: one bad change fails all
    // of that user's, as in Kafka.
    let mut by_user: BTreeMap<String, Result<Vec<Alteration>, (ResponseError, String)>> =
        BTreeMap::new();
    let mut add = |user: String, alteration: Result<Alteration, (ResponseError, String)>| {
        let entry = by_user.entry(user).or_insert_with(|| Ok(Vec::new()));
        match (entry, alteration) {
            (Err(_), _) => {}
            (entry @ Ok(_), Err(e)) => *entry = Err(e),
            (Ok(list), Ok(a)) => list.push(a),
        }
    };
    for d in request.deletions {
        let mechanism = mechanism(d.mechanism);
        add(d.name.to_string(), mechanism.map(Alteration::Delete));
    }
    for u in request.upsertions {
        let user = u.name.to_string();
        let credential = mechanism(u.mechanism).and_then(|m| {
            let iterations = u32::try_from(u.iterations).unwrap_or(0);
            if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                return Err((
                    ResponseError::UnacceptableCredential,
                    format!("iterations must be within {MIN_ITERATIONS}..={MAX_ITERATIONS}"),
                ));
            }
            if user.is_empty() || u.salt.is_empty() || u.salted_password.is_empty() {
                return Err((
                    ResponseError::UnacceptableCredential,
                    "user, salt and salted password must not be empty".to_string(),
                ));
            }
            Ok(ScramCredential::from_salted_password(
                &user,
                m,
                &u.salted_password,
                u.salt.to_vec(),
                iterations,
            ))
        });
        add(user, credential.map(Alteration::Upsert));
    }
    let mut results = Vec::new();
    for (user, alterations) in by_user {
        let outcome = match alterations {
            Ok(alterations) => apply(broker, &user, alterations).await,
            Err(e) => Err(e),
        };
        let result = AlterUserScramCredentialsResult::default().with_user(str_bytes(&user));
        results.push(match outcome {
            Ok(()) => result,
            Err((code, message)) => result
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(&message))),
        });
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// The mechanism of Kafka's code `code`.
fn mechanism(code: i8) -> Result<ScramMechanism, (ResponseError, String)> {
    ScramMechanism::from_code(code).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        format!("unknown SCRAM mechanism {code}"),
    ))
}

/// Applies one user's checked changes.
async fn apply(
    broker: &Broker,
    user: &str,
    alterations: Vec<Alteration>,
) -> Result<(), (ResponseError, String)> {
    let mechanisms: Vec<ScramMechanism> = alterations
        .iter()
        .map(|a| match a {
            Alteration::Upsert(c) => c.mechanism,
            Alteration::Delete(m) => *m,
        })
        .collect();
    if mechanisms.iter().collect::<BTreeSet<_>>().len() != mechanisms.len() {
        return Err((
            ResponseError::DuplicateResource,
            "a mechanism of the user is altered twice".into(),
        ));
    }
    let store = broker.credentials();
    let failed = |e: crate::error::Error| (e.response_error(), e.to_string());
    for alteration in alterations {
        match alteration {
            Alteration::Upsert(credential) => {
                store
                    .put_scram_credential(credential)
                    .await
                    .map_err(failed)?;
            }
            Alteration::Delete(mechanism) => {
                if !store
                    .delete_scram_credential(user, mechanism)
                    .await
                    .map_err(failed)?
                {
                    return Err((
                        ResponseError::ResourceNotFound,
                        "Attempt to delete a user credential that does not exist".into(),
                    ));
                }
            }
        }
    }
    Ok(())
}
