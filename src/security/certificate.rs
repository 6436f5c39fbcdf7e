//! The principal of a client certificate: its subject's distinguished
//! name (RFC 4514, most specific first: `CN=alice,OU=eng,O=acme`), turned
//! into a user name by Kafka's `ssl.principal.mapping.rules`:
//! `RULE:pattern/replacement/[L|U]` rules tried in order (the first whose
//! pattern matches the whole name applies, `L`/`U` lower- or upper-case
//! the result), and `DEFAULT`, the name as it is.

use regex::Regex;
use x509_cert::Certificate;
use x509_cert::der::Decode;

use super::Principal;

/// Why mapping rules cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("ssl_principal_mapping_rules: {0}")]
pub struct RuleError(String);

#[derive(Debug)]
enum Rule {
    Default,
    Replace {
        whole: Regex,
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// Turns certificate subjects into principals.
#[derive(Debug)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl PrincipalMapper {
    /// The mapper of `rules` (Kafka's syntax; none means `DEFAULT`).
    pub fn new(rules: &[String]) -> Result<PrincipalMapper, RuleError> {
        let mut parsed = Vec::new();
        for rule in rules {
            let rule = rule.trim();
            if rule == "DEFAULT" {
                parsed.push(Rule::Default);
                continue;
            }
            let Some(body) = rule.strip_prefix("RULE:") else {
                return Err(RuleError(format!(
                    "'{rule}' is neither DEFAULT nor RULE:..."
                )));
            };
            let parts: Vec<&str> = body.split('/').collect();
            let (pattern, replacement, case) = match parts.as_slice() {
                [p, r, ""] => (*p, *r, None),
                [p, r, c] if *c == "L" || *c == "U" => (*p, *r, c.chars().next()),
                _ => {
                    return Err(RuleError(format!(
                        "'{rule}' is not RULE:pattern/replacement/[L|U]"
                    )));
                }
            };
            let compile =
                |p: &str| Regex::new(p).map_err(|e| RuleError(format!("pattern of '{rule}': {e}")));
            parsed.push(Rule::Replace {
                whole: compile(&format!("^(?:{pattern})$"))?,
                pattern: compile(pattern)?,
                replacement: replacement.to_string(),
                case,
            });
        }
        if parsed.is_empty() {
            parsed.push(Rule::Default);
        }
        Ok(PrincipalMapper { rules: parsed })
    }

    /// The user a distinguished name maps to; `None` if no rule applies.
    pub fn map(&self, dn: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_string()),
            Rule::Replace {
                whole,
                pattern,
                replacement,
                case,
            } => {
                if !whole.is_match(dn) {
                    return None;
                }
                let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                Some(match case {
                    Some('L') => name.to_lowercase(),
                    Some('U') => name.to_uppercase(),
                    _ => name,
                })
            }
        })
    }

    /// The principal of the DER certificate `der`: `User:` and its
    /// mapped subject; `None` if it cannot be read or no rule applies (the
    /// connection is refused, as in Kafka).
    pub fn principal(&self, der: &[u8]) -> Option<Principal> {
        let subject = Certificate::from_der(der).ok()?.tbs_certificate.subject;
        self.map(&subject.to_string())
            .map(|name| Principal::user(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_in_order_as_kafka_applies_them() {
        let mapper = PrincipalMapper::new(&[
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/".into(),
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?)$/$1@$2/L".into(),
            "DEFAULT".into(),
        ])
        .unwrap();
        assert_eq!(
            mapper.map("CN=kafka-app,OU=ServiceUsers,O=Acme").as_deref(),
            Some("kafka-app")
        );
        assert_eq!(
            mapper.map("CN=Alice,OU=Eng,O=Acme").as_deref(),
            Some("alice@eng")
        );
        assert_eq!(mapper.map("CN=bob").as_deref(), Some("CN=bob"));
        let strict = PrincipalMapper::new(&["RULE:^CN=(.*)$/$1/U".into()]).unwrap();
        assert_eq!(strict.map("CN=bob").as_deref(), Some("BOB"));
        assert_eq!(strict.map("O=x"), None, "no rule applies");
        assert!(PrincipalMapper::new(&["RULE:x".into()]).is_err());
        assert!(PrincipalMapper::new(&["RULE:(/x/".into()]).is_err());
        assert!(PrincipalMapper::new(&["NOPE".into()]).is_err());
    }
}
