//! Where a record's key goes in the table: its own partition key, or the sort key
//! under one static partition key (a single-table design).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::names::AttributeNames;
use crate::config::ConfigError;

/// Environment variable: the static partition key value of a single-table layout
/// (with [`ENV_SORT_KEY`]).
pub const ENV_STATIC_PARTITION_KEY: &str = "IDEMPOTENCY_STATIC_PARTITION_KEY";
/// Environment variable: the sort key attribute of a single-table layout (with
/// [`ENV_STATIC_PARTITION_KEY`]).
pub const ENV_SORT_KEY: &str = "IDEMPOTENCY_SORT_KEY";

/// How a record is keyed in the table.
///
/// The default gives every record its own partition: the record's key (its scope's
/// partition key, `k1|route|actor|key`) is the table's partition key
/// ([`AttributeNames::partition_key`]). A single-table design, where the idempotency
/// records share a table whose key is (partition key, sort key), puts every record
/// under one static partition key value and its key in the sort key, as Powertools'
/// `static_pk_value` and `sort_key_attr` do. The protocol is the same in both: one
/// conditional write to begin and one fenced write to complete, on the item at that
/// key.
///
/// One partition holds every record of a static layout: DynamoDB splits a busy
/// partition by sort key range, but a partition's throughput before it splits is
/// 1,000 writes and 3,000 reads per second. Prefer the default unless the table must
/// be shared.
///
/// ```
/// use lambda_idempotency::store::dynamodb::KeyLayout;
///
/// let layout = KeyLayout::static_partition("idempotency#orders-api", "sk");
/// assert_eq!(layout.sort_key(), Some("sk"));
/// assert_eq!(KeyLayout::default().sort_key(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyLayout {
    /// The record's key is the partition key (default).
    #[default]
    PartitionKey,
    /// Every record under one partition key value, its key in a sort key.
    StaticPartition {
        /// The partition key value every record is stored under.
        value: String,
        /// The sort key attribute (S) that holds the record's key.
        sort_key: String,
    },
}

impl KeyLayout {
    /// Every record under the partition key `value`, its key in the attribute
    /// `sort_key` (a string sort key).
    pub fn static_partition(value: impl Into<String>, sort_key: impl Into<String>) -> Self {
        Self::StaticPartition {
            value: value.into(),
            sort_key: sort_key.into(),
        }
    }

    /// The layout named by the environment: [`ENV_STATIC_PARTITION_KEY`] and
    /// [`ENV_SORT_KEY`] together give a static partition; neither gives the default.
    /// One without the other is [`ConfigError::MissingEnv`] naming the missing one
    /// (an empty value counts as missing).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with `lookup` answering like `std::env::var`.
    pub fn from_env_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let value = lookup(ENV_STATIC_PARTITION_KEY).filter(|v| !v.is_empty());
        let sort_key = lookup(ENV_SORT_KEY).filter(|v| !v.is_empty());
        match (value, sort_key) {
            (None, None) => Ok(Self::PartitionKey),
            (Some(value), Some(sort_key)) => Ok(Self::static_partition(value, sort_key)),
            (None, Some(_)) => Err(ConfigError::MissingEnv {
                name: ENV_STATIC_PARTITION_KEY,
            }),
            (Some(_), None) => Err(ConfigError::MissingEnv { name: ENV_SORT_KEY }),
        }
    }

    /// The sort key attribute, in a static-partition layout.
    pub fn sort_key(&self) -> Option<&str> {
        match self {
            Self::PartitionKey => None,
            Self::StaticPartition { sort_key, .. } => Some(sort_key),
        }
    }

    /// Checks that a static partition's value and sort key are not empty, and that
    /// the sort key is none of the record's attributes (it would be overwritten, and
    /// records would collide): [`ConfigError::InvalidKeyLayout`].
    /// [`DynamoDbStore::check_table`](super::DynamoDbStore::check_table) and
    /// `create_table_with_layout` call it.
    pub fn check(&self, names: &AttributeNames) -> Result<(), ConfigError> {
        let Self::StaticPartition { value, sort_key } = self else {
            return Ok(());
        };
        let invalid = |reason: String| Err(ConfigError::InvalidKeyLayout { reason });
        if value.is_empty() || sort_key.is_empty() {
            return invalid(
                "the static partition key value and the sort key must not be empty".to_owned(),
            );
        }
        if names.all().contains(&sort_key.as_str()) {
            return invalid(format!(
                "the sort key {sort_key:?} is also one of the record's attributes (AttributeNames)"
            ));
        }
        Ok(())
    }

    /// The attribute that holds a record's key.
    pub(crate) fn key_attribute<'a>(&'a self, names: &'a AttributeNames) -> &'a str {
        self.sort_key().unwrap_or(&names.partition_key)
    }

    /// The table key of the item for `record_key`.
    pub(crate) fn key(
        &self,
        names: &AttributeNames,
        record_key: &str,
    ) -> HashMap<String, AttributeValue> {
        let record_key = AttributeValue::S(record_key.to_owned());
        match self {
            Self::PartitionKey => HashMap::from([(names.partition_key.clone(), record_key)]),
            Self::StaticPartition { value, sort_key } => HashMap::from([
                (
                    names.partition_key.clone(),
                    AttributeValue::S(value.clone()),
                ),
                (sort_key.clone(), record_key),
            ]),
        }
    }

    /// The record's key in `item` (a record or a key-only index item), if it is one
    /// of this layout's: an item under another static partition of a shared table
    /// is not.
    pub(crate) fn record_key_of(
        &self,
        names: &AttributeNames,
        item: &HashMap<String, AttributeValue>,
    ) -> Option<String> {
        if let Self::StaticPartition { value, .. } = self {
            match item.get(&names.partition_key) {
                Some(AttributeValue::S(partition)) if partition == value => {}
                _ => return None,
            }
        }
        match item.get(self.key_attribute(names)) {
            Some(AttributeValue::S(key)) => Some(key.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_both_or_neither() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            KeyLayout::from_env_lookup(env(&[])),
            Ok(KeyLayout::PartitionKey)
        );
        assert_eq!(
            KeyLayout::from_env_lookup(env(&[
                (ENV_STATIC_PARTITION_KEY, "idempotency#orders"),
                (ENV_SORT_KEY, "sk"),
            ])),
            Ok(KeyLayout::static_partition("idempotency#orders", "sk"))
        );
        assert_eq!(
            KeyLayout::from_env_lookup(env(&[(ENV_STATIC_PARTITION_KEY, "p")])),
            Err(ConfigError::MissingEnv { name: ENV_SORT_KEY })
        );
        assert_eq!(
            KeyLayout::from_env_lookup(env(&[
                (ENV_SORT_KEY, "sk"),
                (ENV_STATIC_PARTITION_KEY, "")
            ])),
            Err(ConfigError::MissingEnv {
                name: ENV_STATIC_PARTITION_KEY
            })
        );
    }

    #[test]
    fn a_layout_that_cannot_key_records_is_refused() {
        let names = AttributeNames::default();
        assert_eq!(KeyLayout::PartitionKey.check(&names), Ok(()));
        assert_eq!(
            KeyLayout::static_partition("idem", "sk").check(&names),
            Ok(())
        );
        for (layout, reason) in [
            (KeyLayout::static_partition("", "sk"), "must not be empty"),
            (KeyLayout::static_partition("idem", ""), "must not be empty"),
            // The sort key would be overwritten by the record's own attributes.
            (
                KeyLayout::static_partition("idem", "status"),
                "\"status\" is also",
            ),
            (KeyLayout::static_partition("idem", "pk"), "\"pk\" is also"),
        ] {
            match layout.check(&names) {
                Err(ConfigError::InvalidKeyLayout { reason: r }) => {
                    assert!(r.contains(reason), "{layout:?}: {r}")
                }
                other => panic!("{layout:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn keys_follow_the_layout() {
        let names = AttributeNames::default();
        let plain = KeyLayout::PartitionKey.key(&names, "k1|r|a|k");
        assert_eq!(plain.len(), 1);
        assert_eq!(plain["pk"], AttributeValue::S("k1|r|a|k".into()));
        let layout = KeyLayout::static_partition("idem", "sk");
        let single = layout.key(&names, "k1|r|a|k");
        assert_eq!(single["pk"], AttributeValue::S("idem".into()));
        assert_eq!(single["sk"], AttributeValue::S("k1|r|a|k".into()));
        assert_eq!(
            layout.record_key_of(&names, &single).as_deref(),
            Some("k1|r|a|k")
        );
        assert_eq!(
            KeyLayout::PartitionKey
                .record_key_of(&names, &single)
                .as_deref(),
            Some("idem")
        );
    }
}
