//! Kafka's access control lists: the vocabulary (resource types, pattern
//! types, operations, permissions, with Kafka's wire codes and names) and
//! the rules that decide whether a set of ACLs allows an operation.
//!
//! A principal may perform an operation on a resource when no ACL that
//! applies denies it and one allows it. An ACL applies when its resource
//! pattern matches (a literal name, the literal `*`, or a prefix), its
//! principal is the principal or `User:*`, its host is the client's or
//! `*`, and its operation is the operation, `All`, or one that implies it
//! (Read, Write, Delete and Alter imply Describe; AlterConfigs implies
//! DescribeConfigs).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Why ACL fields from a request cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AclError(pub String);

/// The name of the one cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A literal resource name or principal/host matching every one.
pub const WILDCARD: &str = "*";

macro_rules! coded_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($variant),* }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code),* }
            }

            /// The value of Kafka's wire code `code`.
            pub fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name (`Read`, `Topic`, ...).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// The value named `name` (any case, `-` or `_` ignored).
            pub fn from_name(name: &str) -> Option<$name> {
                let simple = |s: &str| s.replace(['-', '_'], "").to_ascii_lowercase();
                Self::ALL.iter().copied().find(|v| simple(v.name()) == simple(name))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

coded_enum!(
    /// What an ACL protects.
    ResourceType {
        Topic = 2, "Topic";
        Group = 3, "Group";
        Cluster = 4, "Cluster";
        TransactionalId = 5, "TransactionalId";
    }
);

coded_enum!(
    /// How an ACL's resource name matches.
    PatternType {
        Literal = 3, "Literal";
        Prefixed = 4, "Prefixed";
    }
);

coded_enum!(
    /// What a principal does to a resource.
    Operation {
        All = 2, "All";
        Read = 3, "Read";
        Write = 4, "Write";
        Create = 5, "Create";
        Delete = 6, "Delete";
        Alter = 7, "Alter";
        Describe = 8, "Describe";
        ClusterAction = 9, "ClusterAction";
        DescribeConfigs = 10, "DescribeConfigs";
        AlterConfigs = 11, "AlterConfigs";
        IdempotentWrite = 12, "IdempotentWrite";
    }
);

coded_enum!(
    /// Whether an ACL allows or denies.
    Permission {
        Deny = 2, "Deny";
        Allow = 3, "Allow";
    }
);

/// Kafka's code for "any" in filters.
const ANY: i8 = 1;
/// Kafka's pattern-type code for "every pattern that matches the name".
const MATCH: i8 = 2;

impl Operation {
    /// Whether an ACL for `self` covers `wanted`.
    fn covers(self, wanted: Operation) -> bool {
        use Operation::*;
        self == All
            || self == wanted
            || (wanted == Describe && matches!(self, Read | Write | Delete | Alter))
            || (wanted == DescribeConfigs && self == AlterConfigs)
    }
}

/// One ACL: a resource pattern and who may (or may not) do what to it
/// from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Acl {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*` for everyone.
    pub principal: String,
    /// A client IP, or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl Acl {
    /// An ACL from a CreateAcls request's codes, checked as Kafka does.
    #[allow(clippy::too_many_arguments)]
    pub fn from_request(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<Acl, AclError> {
        let bad = |what: &str, code: i8| AclError(format!("{what} {code} is not valid in an ACL"));
        let resource_type =
            ResourceType::from_code(resource_type).ok_or(bad("resource type", resource_type))?;
        let pattern_type =
            PatternType::from_code(pattern_type).ok_or(bad("pattern type", pattern_type))?;
        let operation = Operation::from_code(operation).ok_or(bad("operation", operation))?;
        let permission = Permission::from_code(permission).ok_or(bad("permission", permission))?;
        if resource_name.is_empty() {
            return Err(AclError("the resource name is empty".into()));
        }
        if resource_type == ResourceType::Cluster && resource_name != CLUSTER_NAME {
            return Err(AclError(format!(
                "the cluster resource is named {CLUSTER_NAME}"
            )));
        }
        if pattern_type == PatternType::Prefixed && resource_name == WILDCARD {
            return Err(AclError("a prefixed pattern cannot be '*'".into()));
        }
        if principal
            .split_once(':')
            .is_none_or(|(t, n)| t.is_empty() || n.is_empty())
        {
            return Err(AclError(format!(
                "principal '{principal}' is not TYPE:NAME (e.g. User:alice)"
            )));
        }
        if host.is_empty() {
            return Err(AclError("the host is empty (use '*' for any)".into()));
        }
        Ok(Acl {
            resource_type,
            resource_name: resource_name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        })
    }

    /// Whether the ACL's pattern matches resource `name` of its type.
    fn matches_resource(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.resource_name == name || self.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&self.resource_name),
        }
    }

    /// Whether the ACL is about `principal` connecting from `host`.
    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && (self.host == host || self.host == WILDCARD)
    }
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}:{} ({}) {} {} from {}",
            self.permission,
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.principal,
            self.operation,
            self.host
        )
    }
}

/// How a filter matches pattern types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    Any,
    /// Every ACL that applies to the filter's resource name (literal
    /// equal or `*`, prefixes of it).
    Match,
    Exactly(PatternType),
}

/// A DescribeAcls or DeleteAcls filter; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// A filter from a request's codes (1 is "any"; pattern 2 "match").
    #[allow(clippy::too_many_arguments)]
    pub fn from_request(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, AclError> {
        fn any_or<T>(
            code: i8,
            what: &str,
            parse: fn(i8) -> Option<T>,
        ) -> Result<Option<T>, AclError> {
            if code == ANY {
                return Ok(None);
            }
            parse(code)
                .map(Some)
                .ok_or_else(|| AclError(format!("{what} {code} is not valid in a filter")))
        }
        let pattern = match pattern_type {
            ANY => PatternFilter::Any,
            MATCH => PatternFilter::Match,
            code => PatternFilter::Exactly(PatternType::from_code(code).ok_or_else(|| {
                AclError(format!("pattern type {code} is not valid in a filter"))
            })?),
        };
        Ok(AclFilter {
            resource_type: any_or(resource_type, "resource type", ResourceType::from_code)?,
            resource_name: resource_name.map(str::to_string),
            pattern,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: any_or(operation, "operation", Operation::from_code)?,
            permission: any_or(permission, "permission", Permission::from_code)?,
        })
    }

    /// Whether `acl` matches the filter.
    pub fn matches(&self, acl: &Acl) -> bool {
        let name_matches = match (&self.resource_name, self.pattern) {
            (None, _) => true,
            (Some(name), PatternFilter::Match) => acl.matches_resource(name),
            (Some(name), _) => &acl.resource_name == name,
        };
        let pattern_matches = match self.pattern {
            PatternFilter::Any | PatternFilter::Match => true,
            PatternFilter::Exactly(p) => acl.pattern_type == p,
        };
        self.resource_type.is_none_or(|t| t == acl.resource_type)
            && name_matches
            && pattern_matches
            && self.principal.as_ref().is_none_or(|p| p == &acl.principal)
            && self.host.as_ref().is_none_or(|h| h == &acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
    }
}

/// What a set of ACLs says about one request for access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// No ACL names the resource at all.
    NoAcls,
}

/// The ACLs of one resource pattern, by principal (`User:*` among them).
type ByPrincipal = HashMap<String, Vec<Acl>>;

/// ACLs indexed for checking, so a check costs a few hash lookups
/// whatever the number of ACLs: by resource pattern (type, pattern type,
/// name or prefix), then by principal. A name's prefixed patterns are
/// found by looking up each of its prefixes.
#[derive(Debug, Default)]
pub struct AclSet {
    /// By resource and pattern type, then name (or prefix).
    patterns: HashMap<(ResourceType, PatternType), HashMap<String, ByPrincipal>>,
    /// How long the longest prefix is, per resource type.
    longest_prefix: HashMap<ResourceType, usize>,
    len: usize,
}

impl AclSet {
    /// The set of `acls`.
    pub fn new(acls: impl IntoIterator<Item = Acl>) -> AclSet {
        let mut set = AclSet::default();
        for acl in acls {
            set.len += 1;
            if acl.pattern_type == PatternType::Prefixed {
                let longest = set.longest_prefix.entry(acl.resource_type).or_default();
                *longest = (*longest).max(acl.resource_name.len());
            }
            set.patterns
                .entry((acl.resource_type, acl.pattern_type))
                .or_default()
                .entry(acl.resource_name.clone())
                .or_default()
                .entry(acl.principal.clone())
                .or_default()
                .push(acl);
        }
        set
    }

    /// How many ACLs there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The patterns that match resource `name` of `resource_type`: the
    /// literal name, the literal `*`, and every prefix of the name.
    fn matching<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a ByPrincipal> + 'a {
        let get = move |pattern: PatternType, n: &str| {
            self.patterns.get(&(resource_type, pattern))?.get(n)
        };
        let longest = self
            .longest_prefix
            .get(&resource_type)
            .copied()
            .unwrap_or(0);
        let prefixes = (1..=name.len().min(longest))
            .filter(move |&end| name.is_char_boundary(end))
            .filter_map(move |end| get(PatternType::Prefixed, &name[..end]));
        let wildcard = (name != WILDCARD).then(|| get(PatternType::Literal, WILDCARD));
        get(PatternType::Literal, name)
            .into_iter()
            .chain(wildcard.flatten())
            .chain(prefixes)
    }

    /// Whether `principal` from `host` may perform `operation` on
    /// resource `name` of `resource_type`: a matching Deny wins over any
    /// Allow.
    pub fn verdict(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Verdict {
        let mut any = false;
        let mut allowed = false;
        for by_principal in self.matching(resource_type, name) {
            any = true;
            let own = by_principal.get(principal).into_iter().flatten();
            let everyone = by_principal.get("User:*").into_iter().flatten();
            for acl in own
                .chain(everyone)
                .filter(|acl| acl.applies_to(principal, host))
            {
                match acl.permission {
                    // Deny All denies everything; Deny Describe does not deny Read.
                    Permission::Deny
                        if acl.operation == operation || acl.operation == Operation::All =>
                    {
                        return Verdict::Denied;
                    }
                    Permission::Allow if acl.operation.covers(operation) => allowed = true,
                    _ => {}
                }
            }
        }
        match (any, allowed) {
            (false, _) => Verdict::NoAcls,
            (true, true) => Verdict::Allowed,
            (true, false) => Verdict::Denied,
        }
    }

    /// Whether some ACL allows `principal` from `host` `operation` on
    /// some resource of `resource_type` that no ACL of the same pattern
    /// denies it (KIP-679: Write on any topic implies IdempotentWrite);
    /// never when a literal `*` ACL denies it.
    pub fn allows_any(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let denies = |acl: &Acl| {
            acl.permission == Permission::Deny
                && (acl.operation == operation || acl.operation == Operation::All)
        };
        let mut allowed = false;
        for ((t, pattern), by_name) in &self.patterns {
            if *t != resource_type {
                continue;
            }
            for (name, by_principal) in by_name {
                let applying: Vec<&Acl> = [principal, "User:*"]
                    .iter()
                    .filter_map(|p| by_principal.get(*p))
                    .flatten()
                    .filter(|acl| acl.applies_to(principal, host))
                    .collect();
                if applying.iter().any(|acl| denies(acl)) {
                    if *pattern == PatternType::Literal && name == WILDCARD {
                        return false;
                    }
                    continue;
                }
                allowed |= applying.iter().any(|acl| {
                    acl.permission == Permission::Allow && acl.operation.covers(operation)
                });
            }
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> Acl {
        Acl {
            resource_type,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation,
            permission,
        }
    }

    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    #[test]
    fn deny_wins_and_operations_imply_describe() {
        let set = AclSet::new([
            acl(Topic, "orders", Literal, "User:alice", Write, Allow),
            acl(Topic, "pay", Prefixed, "User:alice", Read, Allow),
            acl(Topic, "payroll", Literal, "User:alice", Read, Deny),
            acl(Topic, "*", Literal, "User:*", Describe, Allow),
        ]);
        let v = |op, name: &str| set.verdict("User:alice", "10.0.0.1", op, Topic, name);
        assert_eq!(v(Write, "orders"), Verdict::Allowed);
        assert_eq!(
            v(Read, "orders"),
            Verdict::Denied,
            "Write does not give Read"
        );
        assert_eq!(v(Describe, "orders"), Verdict::Allowed);
        assert_eq!(v(Read, "payments"), Verdict::Allowed, "prefixed");
        assert_eq!(v(Read, "payroll"), Verdict::Denied, "deny beats the prefix");
        assert_eq!(
            v(Describe, "payroll"),
            Verdict::Allowed,
            "Deny Read is not Deny Describe"
        );
        assert_eq!(
            v(Read, "other"),
            Verdict::Denied,
            "only the wildcard Describe applies"
        );
        let bob = |op, name: &str| set.verdict("User:bob", "10.0.0.1", op, Topic, name);
        assert_eq!(bob(Describe, "x"), Verdict::Allowed);
        assert_eq!(bob(Write, "orders"), Verdict::Denied);
        assert_eq!(
            set.verdict("User:bob", "h", Read, Group, "g"),
            Verdict::NoAcls
        );
        assert!(set.allows_any("User:alice", "h", Write, Topic));
        assert!(!set.allows_any("User:bob", "h", Write, Topic));
        let overridden = AclSet::new([
            acl(Topic, "orders", Literal, "User:alice", Write, Allow),
            acl(Topic, "orders", Literal, "User:alice", Write, Deny),
        ]);
        assert!(
            !overridden.allows_any("User:alice", "h", Write, Topic),
            "a denied Write implies no IdempotentWrite"
        );
    }

    #[test]
    fn hosts_narrow_an_acl() {
        let mut only_here = acl(Group, "g", Literal, "User:alice", Read, Allow);
        only_here.host = "10.0.0.1".into();
        let set = AclSet::new([only_here]);
        assert_eq!(
            set.verdict("User:alice", "10.0.0.1", Read, Group, "g"),
            Verdict::Allowed
        );
        assert_eq!(
            set.verdict("User:alice", "10.0.0.2", Read, Group, "g"),
            Verdict::Denied
        );
    }

    #[test]
    fn filters_match_as_kafka_describes() {
        let prefixed = acl(Topic, "pay", Prefixed, "User:alice", Read, Allow);
        let literal = acl(Topic, "payments", Literal, "User:bob", Write, Deny);
        let filter = |pattern_type, name: Option<&str>| {
            AclFilter::from_request(2, name, pattern_type, None, None, 1, 1).unwrap()
        };
        assert!(filter(2, Some("payments")).matches(&prefixed));
        assert!(filter(2, Some("payments")).matches(&literal));
        assert!(!filter(3, Some("payments")).matches(&prefixed));
        assert!(filter(1, None).matches(&prefixed));
        assert!(
            !filter(4, Some("payments")).matches(&prefixed),
            "exact prefix name"
        );
        assert!(AclFilter::from_request(9, None, 1, None, None, 1, 1).is_err());
    }

    #[test]
    fn bad_acls_are_refused() {
        assert!(Acl::from_request(4, "other", 3, "User:a", "*", 3, 3).is_err());
        assert!(Acl::from_request(2, "t", 3, "alice", "*", 3, 3).is_err());
        assert!(Acl::from_request(2, "*", 4, "User:a", "*", 3, 3).is_err());
        assert!(
            Acl::from_request(2, "t", 3, "User:a", "*", 1, 3).is_err(),
            "ANY"
        );
        assert!(Acl::from_request(2, "t", 3, "User:a", "*", 3, 3).is_ok());
        assert_eq!(
            Operation::from_name("describe-configs"),
            Some(DescribeConfigs)
        );
        assert_eq!(
            ResourceType::from_name("transactional_id"),
            Some(TransactionalId)
        );
    }
}
