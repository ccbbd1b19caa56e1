//! `template.yaml`, the example SAM stack, read as data: what an operator relies on is
//! there and wired to the right thing. `make lint-template` checks the template
//! against CloudFormation's schemas, but not what it means: that each alarm watches
//! the metric it names with the right comparison and threshold and notifies
//! `AlarmTopicArn`; that the sweeper, its alarms and the two sparse indexes it queries
//! exist only with `Sweeper=true` (off by default: TTL alone expires records) and
//! nothing else names them otherwise; that the tables are protected, the functions
//! traced with JSON logs, every route behind the JWT authorizer, the API throttled and
//! logged, the consumer's concurrency capped, and the in-flight gauge measured every
//! minute. The dashboard's body is a `!Sub` string that neither linter parses: here,
//! rendered with and without the sweeper, it must be JSON and name only metrics that
//! something emits (the library's names, from `lambda_idempotency::metrics`, the
//! sweeper's, and the AWS metrics the alarms use). Nothing is deployed.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use lambda_idempotency::metrics;
use lambda_idempotency::ops::{EXPIRY_INDEX, INFLIGHT_INDEX};
use serde_json::{Value as Json, json};
use serde_yaml_ng::Value;

static TEMPLATE: LazyLock<Value> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
});

/// The template's text, for what is checked as text.
static TEXT: LazyLock<String> = LazyLock::new(|| {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap()
});

/// The sweeper's per-run metrics (`functions/sweeper`, dimension `service` = `sweeper`).
const SWEEPER_METRICS: [&str; 3] = [
    "idempotency.sweep.deleted.count",
    "idempotency.sweep.skipped.count",
    "idempotency.sweep.abandoned.count",
];

/// The AWS metrics the alarms watch, by namespace.
const AWS_METRICS: [(&str, &str); 4] = [
    ("AWS/Lambda", "Errors"),
    ("AWS/Lambda", "Throttles"),
    ("AWS/ApiGateway", "5xx"),
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
];

/// Every metric name in namespace `Idempotency` that the stack's functions emit.
fn idempotency_metrics() -> BTreeSet<&'static str> {
    let layers = [
        metrics::EXECUTION,
        metrics::REPLAY,
        metrics::CONFLICT,
        metrics::DUPLICATE_IN_FLIGHT,
        metrics::ERRORED,
        metrics::LEASE_LOST,
        metrics::STORE_ERROR,
        metrics::LOOKUP_LATENCY,
        metrics::RECORD_SIZE,
    ];
    let sweeper = [metrics::INFLIGHT, metrics::INFLIGHT_LAPSED];
    layers
        .into_iter()
        .chain(sweeper)
        .chain(SWEEPER_METRICS)
        .collect()
}

/// A value written in YAML, intrinsic functions included: what the template must say.
fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The value at `path` in `value`; panics naming the path when it is not there.
fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| {
        v.get(key)
            .unwrap_or_else(|| panic!("template.yaml has no {}", path.join(".")))
    })
}

/// A top-level section's entry, or a resource's property.
fn template(path: &[&str]) -> &'static Value {
    at(&TEMPLATE, path)
}

fn props(resource: &str) -> &'static Value {
    template(&["Resources", resource, "Properties"])
}

fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

/// The resources of one type, by logical id.
fn resources_of(kind: &str) -> Vec<(&'static str, &'static Value)> {
    template(&["Resources"])
        .as_mapping()
        .expect("Resources is a mapping")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
        .map(|(id, r)| (id.as_str().expect("logical ids are strings"), r))
        .collect()
}

/// What a `!Sub` holds (`!Sub text`).
fn sub_text(value: &Value) -> &str {
    match value {
        Value::Tagged(t) if t.tag == "Sub" => str_of(&t.value, "the !Sub"),
        other => panic!("not a !Sub string: {other:?}"),
    }
}

/// The condition that parameter `Sweeper` sets.
const HAS_SWEEPER: &str = "HasSweeper";

/// The resources that exist only with `Sweeper=true`.
const SWEEPER_RESOURCES: [&str; 5] = [
    "SweeperFunction",
    "SweeperLogGroup",
    "SweeperErrorsAlarm",
    "SweeperThrottlesAlarm",
    "InFlightGaugeMissingAlarm",
];

/// The two branches of `!If [HasSweeper, with, without]`, if `value` is one.
fn sweeper_if(value: &Value) -> Option<(&Value, &Value)> {
    match value {
        Value::Tagged(t) if t.tag == "If" => match t.value.as_sequence()?.as_slice() {
            [condition, with, without] if condition.as_str() == Some(HAS_SWEEPER) => {
                Some((with, without))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `sweeper_if`, where the template must say `!If [HasSweeper, ...]`.
fn sweeper_branches<'a>(value: &'a Value, what: &str) -> (&'a Value, &'a Value) {
    sweeper_if(value).unwrap_or_else(|| panic!("{what} is not !If [{HAS_SWEEPER}, ...]: {value:?}"))
}

/// Every string in `value` (keys and scalars, `!Sub` texts included) that is there
/// whatever `Sweeper` says: all but the first branch of each `!If [HasSweeper, ...]`.
fn unconditional_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    if let Some((_, without)) = sweeper_if(value) {
        return unconditional_strings(without, out);
    }
    match value {
        Value::String(s) => out.push(s),
        Value::Sequence(items) => items.iter().for_each(|v| unconditional_strings(v, out)),
        Value::Mapping(entries) => {
            for (key, v) in entries {
                unconditional_strings(key, out);
                unconditional_strings(v, out);
            }
        }
        Value::Tagged(t) => unconditional_strings(&t.value, out),
        _ => {}
    }
}

/// One alarm on one metric: what it watches and when it fires.
struct Alarm {
    id: String,
    namespace: &'static str,
    metric: &'static str,
    /// The dimension's name and value, the value in YAML (`!Ref OrdersApiFunction`).
    dimension: (&'static str, String),
    stat: &'static str,
    period: u64,
    /// Data points to alarm, out of evaluation periods.
    points: (u64, u64),
    comparison: &'static str,
    threshold: f64,
    missing: &'static str,
}

impl Alarm {
    /// The common case: the 5-minute Sum above 0 in one period, quiet when no data.
    fn any(
        id: String,
        namespace: &'static str,
        metric: &'static str,
        dimension: (&'static str, String),
    ) -> Alarm {
        Alarm {
            id,
            namespace,
            metric,
            dimension,
            stat: "Sum",
            period: 300,
            points: (1, 1),
            comparison: "GreaterThanThreshold",
            threshold: 0.0,
            missing: "notBreaching",
        }
    }
}

fn metric_alarms() -> Vec<Alarm> {
    let dlq = (
        "QueueName",
        "!GetAtt PaymentsDeadLetterQueue.QueueName".into(),
    );
    let mut alarms = vec![Alarm {
        stat: "Maximum",
        ..Alarm::any(
            "PaymentsDeadLetterQueueAlarm".into(),
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            dlq,
        )
    }];
    for function in ["OrdersApi", "PaymentsConsumer", "Sweeper"] {
        for metric in ["Errors", "Throttles"] {
            let dimension = ("FunctionName", format!("!Ref {function}Function"));
            let id = format!("{function}{metric}Alarm");
            alarms.push(Alarm::any(id, "AWS/Lambda", metric, dimension));
        }
    }
    alarms.push(Alarm {
        period: 60,
        points: (3, 5),
        ..Alarm::any(
            "OrdersHttpApi5xxAlarm".into(),
            "AWS/ApiGateway",
            "5xx",
            ("ApiId", "!Ref OrdersHttpApi".into()),
        )
    });
    for function in ["OrdersApi", "PaymentsConsumer"] {
        for (signal, metric) in [
            ("StoreErrors", metrics::STORE_ERROR),
            ("LeaseLost", metrics::LEASE_LOST),
        ] {
            let dimension = ("service", format!("!Ref {function}Function"));
            let id = format!("{function}{signal}Alarm");
            alarms.push(Alarm::any(id, "Idempotency", metric, dimension));
        }
    }
    // The only alarm on absence: no gauge for 15 minutes means the sweeper stopped
    // measuring, so missing data breaches.
    alarms.push(Alarm {
        stat: "SampleCount",
        points: (3, 3),
        comparison: "LessThanThreshold",
        threshold: 1.0,
        missing: "breaching",
        ..Alarm::any(
            "InFlightGaugeMissingAlarm".into(),
            "Idempotency",
            metrics::INFLIGHT,
            ("table", "!Ref IdempotencyTable".into()),
        )
    });
    alarms
}

/// The replay-ratio alarms (metric math), one per function with the layer.
const RATIO_ALARMS: [(&str, &str); 2] = [
    ("OrdersApiReplayRatioAlarm", "OrdersApiFunction"),
    (
        "PaymentsConsumerReplayRatioAlarm",
        "PaymentsConsumerFunction",
    ),
];

#[test]
fn the_alarms_are_exactly_the_expected_ones() {
    let alarms = metric_alarms();
    let expected: BTreeSet<&str> = alarms
        .iter()
        .map(|a| a.id.as_str())
        .chain(RATIO_ALARMS.iter().map(|(id, _)| *id))
        .collect();
    let found: BTreeSet<&str> = resources_of("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn each_alarm_watches_its_metric_with_its_threshold() {
    for alarm in metric_alarms() {
        let id = alarm.id.as_str();
        let p = props(id);
        assert_eq!(
            at(p, &["Namespace"]).as_str(),
            Some(alarm.namespace),
            "{id}"
        );
        assert_eq!(at(p, &["MetricName"]).as_str(), Some(alarm.metric), "{id}");
        let (name, value) = &alarm.dimension;
        assert_eq!(
            at(p, &["Dimensions"]),
            &yaml(&format!("[{{Name: {name}, Value: {value}}}]")),
            "{id}"
        );
        assert_eq!(at(p, &["Statistic"]).as_str(), Some(alarm.stat), "{id}");
        assert_eq!(at(p, &["Period"]).as_u64(), Some(alarm.period), "{id}");
        assert_eq!(
            (
                at(p, &["DatapointsToAlarm"]).as_u64(),
                at(p, &["EvaluationPeriods"]).as_u64()
            ),
            (Some(alarm.points.0), Some(alarm.points.1)),
            "{id}"
        );
        let comparison = at(p, &["ComparisonOperator"]).as_str();
        assert_eq!(comparison, Some(alarm.comparison), "{id}");
        assert_eq!(
            at(p, &["Threshold"]).as_f64(),
            Some(alarm.threshold),
            "{id}"
        );
        let missing = at(p, &["TreatMissingData"]).as_str();
        assert_eq!(missing, Some(alarm.missing), "{id}");
    }
}

#[test]
fn replay_ratio_alarms_divide_replays_by_executions_over_15_minutes_with_a_volume_guard() {
    for (id, function) in RATIO_ALARMS {
        let p = props(id);
        let queries = at(p, &["Metrics"])
            .as_sequence()
            .expect("Metrics is a list");
        let query = |query_id: &str| {
            queries
                .iter()
                .find(|q| q.get("Id").and_then(Value::as_str) == Some(query_id))
                .unwrap_or_else(|| panic!("{id}: no query {query_id}"))
        };
        for (query_id, metric) in [
            ("replays", metrics::REPLAY),
            ("executions", metrics::EXECUTION),
        ] {
            let q = query(query_id);
            let stat = at(q, &["MetricStat"]);
            let expected = format!(
                "{{Namespace: Idempotency, MetricName: {metric}, \
                 Dimensions: [{{Name: service, Value: !Ref {function}}}]}}"
            );
            assert_eq!(at(stat, &["Metric"]), &yaml(&expected), "{id} {query_id}");
            assert_eq!(at(stat, &["Period"]).as_u64(), Some(900), "{id} {query_id}");
            assert_eq!(at(stat, &["Stat"]).as_str(), Some("Sum"), "{id} {query_id}");
            assert_eq!(
                at(q, &["ReturnData"]).as_bool(),
                Some(false),
                "{id} {query_id}"
            );
        }
        let ratio = query("replayRatio");
        assert_eq!(
            str_of(at(ratio, &["Expression"]), "Expression"),
            "IF(executions >= 20, 100 * FILL(replays, 0) / executions, 0)",
            "{id}"
        );
        assert_eq!(at(ratio, &["ReturnData"]).as_bool(), Some(true), "{id}");
        assert_eq!(queries.len(), 3, "{id}");
        let comparison = at(p, &["ComparisonOperator"]).as_str();
        assert_eq!(comparison, Some("GreaterThanThreshold"), "{id}");
        assert_eq!(at(p, &["Threshold"]).as_f64(), Some(5.0), "{id}");
        assert_eq!(at(p, &["EvaluationPeriods"]).as_u64(), Some(1), "{id}");
        let missing = at(p, &["TreatMissingData"]).as_str();
        assert_eq!(missing, Some("notBreaching"), "{id}");
    }
}

#[test]
fn every_alarm_notifies_the_topic_and_says_what_to_look_at_first() {
    assert_eq!(
        template(&["Conditions", "HasAlarmTopic"]),
        &yaml(r#"!Not [!Equals [!Ref AlarmTopicArn, ""]]"#)
    );
    // Optional: empty by default, and then no action at all.
    let topic = template(&["Parameters", "AlarmTopicArn"]);
    assert_eq!(at(topic, &["Default"]).as_str(), Some(""));
    let notify = yaml("!If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]");
    let alarms = resources_of("AWS::CloudWatch::Alarm");
    assert!(!alarms.is_empty());
    for (id, alarm) in alarms {
        let p = at(alarm, &["Properties"]);
        assert_eq!(at(p, &["AlarmActions"]), &notify, "{id}");
        assert_eq!(at(p, &["OKActions"]), &notify, "{id}");
        let description = str_of(at(p, &["AlarmDescription"]), "AlarmDescription");
        assert!(description.contains("Look first"), "{id}: {description}");
        assert!(
            description.len() <= 1024,
            "{id}: CloudWatch takes 1024 characters"
        );
        let missing = str_of(at(p, &["TreatMissingData"]), "TreatMissingData");
        assert!(["notBreaching", "breaching", "ignore", "missing"].contains(&missing));
    }
}

#[test]
fn the_idempotency_table_has_the_sparse_expiry_and_in_flight_indexes_only_with_the_sweeper() {
    let table = props("IdempotencyTable");
    assert_eq!(
        at(table, &["KeySchema"]),
        &yaml("[{AttributeName: pk, KeyType: HASH}]")
    );
    let pk = yaml("{AttributeName: pk, AttributeType: S}");
    let (with, without) =
        sweeper_branches(at(table, &["AttributeDefinitions"]), "AttributeDefinitions");
    // Without the sweeper, the key alone: CloudFormation refuses a definition no key
    // or index uses.
    assert_eq!(without, &Value::Sequence(vec![pk.clone()]));
    let mut expected = vec![pk];
    for (name, kind) in [
        ("expiry_bucket", "S"),
        ("expires_at", "N"),
        ("inflight_shard", "S"),
        ("lease_expires_at_ms", "N"),
    ] {
        expected.push(yaml(&format!(
            "{{AttributeName: {name}, AttributeType: {kind}}}"
        )));
    }
    assert_eq!(with, &Value::Sequence(expected));

    let (with, without) = sweeper_branches(
        at(table, &["GlobalSecondaryIndexes"]),
        "GlobalSecondaryIndexes",
    );
    assert_eq!(without, &yaml("!Ref AWS::NoValue"));
    let indexes = with.as_sequence().unwrap();
    let names: Vec<&str> = indexes
        .iter()
        .map(|i| str_of(at(i, &["IndexName"]), "IndexName"))
        .collect();
    assert_eq!(names, [EXPIRY_INDEX, INFLIGHT_INDEX]);
    for (index, (hash, range)) in indexes.iter().zip([
        ("expiry_bucket", "expires_at"),
        ("inflight_shard", "lease_expires_at_ms"),
    ]) {
        let keys = yaml(&format!(
            "[{{AttributeName: {hash}, KeyType: HASH}}, {{AttributeName: {range}, KeyType: RANGE}}]"
        ));
        assert_eq!(at(index, &["KeySchema"]), &keys, "{hash}");
        let projection = at(index, &["Projection", "ProjectionType"]).as_str();
        assert_eq!(projection, Some("KEYS_ONLY"), "{hash}");
    }
    // TTL expires records either way.
    assert_eq!(
        at(table, &["TimeToLiveSpecification"]),
        &yaml("{AttributeName: expires_at, Enabled: true}")
    );
}

#[test]
fn the_sweeper_is_opt_in_and_off_by_default() {
    let parameter = template(&["Parameters", "Sweeper"]);
    assert_eq!(at(parameter, &["Type"]).as_str(), Some("String"));
    assert_eq!(at(parameter, &["Default"]).as_str(), Some("false"));
    assert_eq!(
        at(parameter, &["AllowedValues"]),
        &yaml(r#"["true", "false"]"#)
    );
    assert_eq!(
        template(&["Conditions", HAS_SWEEPER]),
        &yaml(r#"!Equals [!Ref Sweeper, "true"]"#)
    );
}

#[test]
fn exactly_the_sweeper_resources_need_the_sweeper_and_nothing_else_names_them() {
    let resources = template(&["Resources"]).as_mapping().unwrap();
    let conditional: BTreeSet<&str> = resources
        .iter()
        .filter(|(_, r)| r.get("Condition").and_then(Value::as_str) == Some(HAS_SWEEPER))
        .map(|(id, _)| id.as_str().unwrap())
        .collect();
    assert_eq!(conditional, BTreeSet::from(SWEEPER_RESOURCES));

    // What exists without the sweeper (a `!Ref`, `!GetAtt`, `${...}` or DependsOn
    // to one of them would fail the deployment) names none of them, outside the
    // HasSweeper branch of an !If.
    let unconditional = resources
        .iter()
        .filter(|(_, r)| r.get("Condition").is_none())
        .map(|(id, r)| (id.as_str().unwrap(), r))
        .chain(
            template(&["Outputs"])
                .as_mapping()
                .unwrap()
                .iter()
                .map(|(id, o)| (id.as_str().unwrap(), o)),
        );
    let mut checked = 0;
    for (id, value) in unconditional {
        let mut strings = Vec::new();
        unconditional_strings(value, &mut strings);
        for text in strings {
            for sweeper in SWEEPER_RESOURCES {
                assert!(!text.contains(sweeper), "{id} names {sweeper}: {text}");
            }
        }
        checked += 1;
    }
    assert!(checked > 20, "{checked}");
}

#[test]
fn the_sweeper_may_query_both_indexes() {
    let statements = at(props("SweeperFunction"), &["Policies"])
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|policy| at(policy, &["Statement"]).as_sequence().unwrap())
        .collect::<Vec<_>>();
    for index in [EXPIRY_INDEX, INFLIGHT_INDEX] {
        let resource = yaml(&format!("!Sub '${{IdempotencyTable.Arn}}/index/{index}'"));
        let statement = statements
            .iter()
            .find(|s| *at(s, &["Resource"]) == resource)
            .unwrap_or_else(|| panic!("no statement on {index}"));
        assert_eq!(
            at(statement, &["Action"]),
            &yaml("[dynamodb:Query]"),
            "{index}"
        );
        assert_eq!(
            at(statement, &["Effect"]).as_str(),
            Some("Allow"),
            "{index}"
        );
    }
}

#[test]
fn the_three_tables_are_protected_from_deletion() {
    let parameter = template(&["Parameters", "DeletionProtection"]);
    assert_eq!(at(parameter, &["Default"]).as_str(), Some("true"));
    assert_eq!(
        template(&["Conditions", "ProtectData"]),
        &yaml(r#"!Equals [!Ref DeletionProtection, "true"]"#)
    );
    for table in ["IdempotencyTable", "OrdersTable", "LedgerTable"] {
        assert_eq!(
            at(props(table), &["DeletionProtectionEnabled"]),
            &yaml("!If [ProtectData, true, false]"),
            "{table}"
        );
    }
}

#[test]
fn every_function_is_traced_logs_json_and_runs_on_the_chosen_architecture() {
    let globals = template(&["Globals", "Function"]);
    assert_eq!(at(globals, &["Tracing"]).as_str(), Some("Active"));
    assert_eq!(
        at(globals, &["LoggingConfig"]),
        &yaml(
            "{LogFormat: JSON, ApplicationLogLevel: !Ref LogLevel, \
             SystemLogLevel: !Ref SystemLogLevel}"
        )
    );
    assert_eq!(
        at(globals, &["Architectures"]),
        &yaml("[!Ref Architecture]")
    );
    let architecture = template(&["Parameters", "Architecture"]);
    assert_eq!(at(architecture, &["Default"]).as_str(), Some("arm64"));
    assert_eq!(
        at(architecture, &["AllowedValues"]),
        &yaml("[arm64, x86_64]")
    );
    let functions = resources_of("AWS::Serverless::Function");
    assert_eq!(functions.len(), 3);
    for (id, function) in functions {
        for global in ["Tracing", "LoggingConfig", "Architectures"] {
            let overridden = at(function, &["Properties"]).get(global).is_some();
            assert!(!overridden, "{id} overrides the global {global}");
        }
    }
}

#[test]
fn reserved_concurrency_is_optional_per_function() {
    for function in ["OrdersApi", "PaymentsConsumer", "Sweeper"] {
        let parameter = format!("{function}ReservedConcurrency");
        let condition = format!("{function}HasReservedConcurrency");
        assert_eq!(
            at(
                props(&format!("{function}Function")),
                &["ReservedConcurrentExecutions"]
            ),
            &yaml(&format!(
                "!If [{condition}, !Ref {parameter}, !Ref AWS::NoValue]"
            )),
            "{function}"
        );
        assert_eq!(
            template(&["Conditions", &condition]),
            &yaml(&format!(r#"!Not [!Equals [!Ref {parameter}, "-1"]]"#))
        );
        let default = at(template(&["Parameters", &parameter]), &["Default"]);
        assert_eq!(default.as_i64(), Some(-1), "{parameter}");
    }
}

#[test]
fn every_route_needs_a_jwt_from_the_default_authorizer() {
    let auth = at(props("OrdersHttpApi"), &["Auth"]);
    let name = str_of(at(auth, &["DefaultAuthorizer"]), "DefaultAuthorizer");
    let authorizer = at(auth, &["Authorizers", name]);
    assert_eq!(
        at(authorizer, &["IdentitySource"]).as_str(),
        Some("$request.header.Authorization")
    );
    // The stack's own Cognito pool unless JwtIssuer names another issuer.
    assert_eq!(
        at(authorizer, &["JwtConfiguration"]),
        &yaml(
            "{issuer: !If [CreateUserPool, \
             !Sub 'https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}', \
             !Ref JwtIssuer], \
             audience: [!If [CreateUserPool, !Ref UserPoolClient, !Ref JwtAudience]]}"
        )
    );
    assert_eq!(
        template(&["Conditions", "CreateUserPool"]),
        &yaml(r#"!Equals [!Ref JwtIssuer, ""]"#)
    );
    let issuer = template(&["Parameters", "JwtIssuer"]);
    assert_eq!(at(issuer, &["Default"]).as_str(), Some(""));
    template(&["Parameters", "JwtAudience"]);

    // No route opts out of the default authorizer.
    let mut routes = 0;
    for (id, function) in resources_of("AWS::Serverless::Function") {
        let Some(events) = at(function, &["Properties"]).get("Events") else {
            continue;
        };
        for (event, e) in events.as_mapping().unwrap() {
            if at(e, &["Type"]).as_str() != Some("HttpApi") {
                continue;
            }
            routes += 1;
            let p = at(e, &["Properties"]);
            assert!(p.get("Auth").is_none(), "{id} {event:?} sets its own Auth");
            assert_eq!(at(p, &["ApiId"]), &yaml("!Ref OrdersHttpApi"));
        }
    }
    assert_eq!(routes, 5);

    for resource in ["UserPool", "UserPoolClient"] {
        let condition = template(&["Resources", resource, "Condition"]).as_str();
        assert_eq!(condition, Some("CreateUserPool"), "{resource}");
    }
    let client = props("UserPoolClient");
    assert_eq!(at(client, &["GenerateSecret"]).as_bool(), Some(false));
    assert_eq!(
        at(client, &["ExplicitAuthFlows"]),
        &yaml("[ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]")
    );
    for output in ["UserPoolId", "UserPoolClientId"] {
        let condition = template(&["Outputs", output, "Condition"]).as_str();
        assert_eq!(condition, Some("CreateUserPool"), "{output}");
    }
}

#[test]
fn the_api_is_throttled_and_writes_json_access_logs_without_credentials() {
    let api = props("OrdersHttpApi");
    assert_eq!(
        at(api, &["DefaultRouteSettings"]),
        &yaml(
            "{ThrottlingRateLimit: !Ref ThrottlingRateLimit, \
             ThrottlingBurstLimit: !Ref ThrottlingBurstLimit}"
        )
    );
    for parameter in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
        let kind = at(template(&["Parameters", parameter]), &["Type"]).as_str();
        assert_eq!(kind, Some("Number"), "{parameter}");
    }

    let logs = at(api, &["AccessLogSettings"]);
    assert_eq!(
        at(logs, &["DestinationArn"]),
        &yaml("!GetAtt OrdersApiAccessLogGroup.Arn")
    );
    let format = str_of(at(logs, &["Format"]), "Format");
    let line: Json = serde_json::from_str(format)
        .unwrap_or_else(|e| panic!("the access log format is not JSON ({e}): {format}"));
    let fields: BTreeSet<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        "requestId",
        "ip",
        "requestTime",
        "method",
        "routeKey",
        "status",
        "responseLength",
        "integrationLatency",
        "errorMessage",
        "authorizerError",
        "integrationError",
    ];
    assert_eq!(fields, BTreeSet::from(expected));
    for (field, value) in line.as_object().unwrap() {
        let value = value.as_str().unwrap_or_default();
        assert!(value.starts_with("$context."), "{field}: {value}");
    }
    // Never a header (the Authorization header carries the bearer token), nor a claim.
    let lower = format.to_ascii_lowercase();
    for secret in ["header", "authorization", "claims", "jwt"] {
        assert!(
            !lower.contains(secret),
            "the access log format logs {secret}"
        );
    }
    assert_eq!(
        template(&["Resources", "OrdersApiAccessLogGroup", "Type"]).as_str(),
        Some("AWS::Logs::LogGroup")
    );
}

#[test]
fn the_payments_consumer_caps_its_concurrency() {
    let event = at(props("PaymentsConsumerFunction"), &["Events", "Payments"]);
    assert_eq!(at(event, &["Type"]).as_str(), Some("SQS"));
    assert_eq!(
        at(
            event,
            &["Properties", "ScalingConfig", "MaximumConcurrency"]
        ),
        &yaml("!Ref PaymentsMaximumConcurrency")
    );
    let parameter = template(&["Parameters", "PaymentsMaximumConcurrency"]);
    // SQS event sources refuse a maximum below 2.
    assert_eq!(at(parameter, &["MinValue"]).as_i64(), Some(2));
    let default = at(parameter, &["Default"]).as_i64();
    assert!(default.is_some_and(|d| d >= 2), "{default:?}");
}

#[test]
fn the_sweeper_measures_the_in_flight_gauge_every_minute_and_sweeps_every_15() {
    let events = at(props("SweeperFunction"), &["Events"])
        .as_mapping()
        .unwrap();
    let schedules: Vec<(&str, Option<&str>)> = events
        .values()
        .map(|e| {
            assert_eq!(at(e, &["Type"]).as_str(), Some("Schedule"));
            let p = at(e, &["Properties"]);
            let rate = str_of(at(p, &["Schedule"]), "Schedule");
            (rate, p.get("Input").map(|i| str_of(i, "Input")))
        })
        .collect();
    assert_eq!(
        schedules,
        [
            ("rate(15 minutes)", None),
            ("rate(1 minute)", Some(r#"{"task": "in-flight"}"#)),
        ]
    );
    // What the sweeper parses (events/sweeper-in-flight.json is the same event).
    let input: Json = serde_json::from_str(schedules[1].1.unwrap()).unwrap();
    assert_eq!(input, json!({"task": "in-flight"}));
}

#[test]
fn every_taggable_resource_carries_the_application_tag() {
    let tag = yaml("{Key: application, Value: !Ref ApplicationTag}");
    for kind in [
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::Logs::LogGroup",
        "AWS::CloudWatch::Alarm",
    ] {
        let resources = resources_of(kind);
        assert!(!resources.is_empty(), "{kind}");
        for (id, resource) in resources {
            let tags = at(resource, &["Properties", "Tags"]).as_sequence().unwrap();
            assert!(tags.contains(&tag), "{id} lacks the application tag");
        }
    }
    let by_map = yaml("!Ref ApplicationTag");
    assert_eq!(
        template(&["Globals", "Function", "Tags", "application"]),
        &by_map
    );
    assert_eq!(
        at(props("OrdersHttpApi"), &["Tags", "application"]),
        &by_map
    );
    assert_eq!(
        at(props("UserPool"), &["UserPoolTags", "application"]),
        &by_map
    );
}

/// The `!Sub` body with every `${Name}` / `${Name.Attribute}` replaced by the name
/// itself (a dummy value that still says what it stood for), and those names.
fn substitute(body: &str) -> (String, Vec<String>) {
    let (mut out, mut names, mut rest) = (String::new(), Vec::new(), body);
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .expect("an unclosed ${ in the dashboard body");
        out.push_str(&after[..end]);
        names.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    (out, names)
}

/// One graphed metric of a dashboard widget: `[namespace, name, dimension, value, ...,
/// {options}]`.
#[derive(Debug)]
struct Graphed {
    /// The widget's title.
    widget: String,
    namespace: String,
    name: String,
    dimensions: Vec<(String, String)>,
    stat: Option<String>,
}

/// The dashboard body's two-argument `!Sub`: the body and its variables.
fn dashboard_sub() -> (&'static str, &'static serde_yaml_ng::Mapping) {
    let sub = at(props("Dashboard"), &["DashboardBody"]);
    let parts = match sub {
        Value::Tagged(t) if t.tag == "Sub" => t.value.as_sequence(),
        _ => None,
    };
    match parts.map(Vec::as_slice) {
        Some([body, Value::Mapping(variables)]) => (str_of(body, "the !Sub body"), variables),
        _ => panic!("the dashboard body is not !Sub [body, {{variables}}]: {sub:?}"),
    }
}

/// The dashboard as CloudFormation renders it with `Sweeper` true or false: each
/// variable (`!If [HasSweeper, !Sub text, otherwise]`) replaced by its branch, then
/// `substitute`d.
fn dashboard(sweeper: bool) -> (Json, Vec<String>) {
    let (body, variables) = dashboard_sub();
    let mut body = body.to_owned();
    for (name, value) in variables {
        let name = str_of(name, "a !Sub variable name");
        let (with, without) = sweeper_branches(value, name);
        let text = if sweeper {
            sub_text(with)
        } else {
            str_of(without, name)
        };
        let placeholder = format!("${{{name}}}");
        assert!(body.contains(&placeholder), "the body does not use {name}");
        body = body.replace(&placeholder, text);
    }
    let (json, names) = substitute(&body);
    let parsed = serde_json::from_str(&json).unwrap_or_else(|e| {
        panic!("the dashboard body (Sweeper={sweeper}) is not JSON ({e}):\n{json}")
    });
    (parsed, names)
}

/// Every graphed metric, and every math or search expression, of every widget.
fn graphed(dashboard: &Json) -> (Vec<Graphed>, Vec<String>) {
    let (mut metrics, mut expressions) = (Vec::new(), Vec::new());
    for widget in dashboard["widgets"].as_array().expect("widgets") {
        let title = widget["properties"]["title"].as_str().unwrap_or_default();
        let Some(rows) = widget["properties"]["metrics"].as_array() else {
            continue;
        };
        for row in rows {
            let row = row.as_array().expect("a metrics row is an array");
            if let Some(expression) = row[0].get("expression") {
                expressions.push(expression.as_str().unwrap().to_owned());
                continue;
            }
            let strings: Vec<&str> = row.iter().filter_map(Json::as_str).collect();
            let dimensions = strings[2..]
                .chunks(2)
                .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
                .collect();
            metrics.push(Graphed {
                widget: title.to_owned(),
                namespace: strings[0].to_owned(),
                name: strings[1].to_owned(),
                dimensions,
                stat: row
                    .last()
                    .and_then(|o| o.get("stat"))
                    .and_then(Json::as_str)
                    .map(str::to_owned),
            });
        }
    }
    (metrics, expressions)
}

/// The metric names that search expressions select (`MetricName="..."`).
fn searched_names(expression: &str) -> Vec<&str> {
    expression
        .split("MetricName=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect()
}

#[test]
fn the_dashboard_body_is_json_and_names_only_emitted_metrics() {
    for sweeper in [true, false] {
        dashboard_names_only_emitted_metrics(sweeper);
    }
}

fn dashboard_names_only_emitted_metrics(sweeper: bool) {
    let (dashboard, names) = dashboard(sweeper);
    // Every ${...} names a resource (or attribute) of this template or a pseudo parameter.
    for name in &names {
        let resource = name.split('.').next().unwrap();
        assert!(
            name.starts_with("AWS::") || template(&["Resources"]).get(resource).is_some(),
            "${{{name}}} names nothing in the template"
        );
    }
    let known = idempotency_metrics();
    let (graphed, expressions) = graphed(&dashboard);
    assert!(!graphed.is_empty());
    for m in &graphed {
        let aws = AWS_METRICS.contains(&(m.namespace.as_str(), m.name.as_str()));
        let ours = m.namespace == "Idempotency" && known.contains(m.name.as_str());
        assert!(aws || ours, "unknown metric {m:?}");
    }
    for expression in &expressions {
        for name in searched_names(expression) {
            assert!(
                known.contains(name),
                "unknown metric {name} in {expression}"
            );
        }
        // Per-route splits only; totals per function are plain {service} metrics.
        if expression.contains("SEARCH(") {
            assert!(
                expression.contains("{Idempotency,service,route}"),
                "{expression}"
            );
        }
    }
    // And no other idempotency.* name anywhere in the body (titles, labels, ...).
    let text = dashboard.to_string();
    for piece in text.split("idempotency.").skip(1) {
        let tail: String = piece
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.".contains(*c))
            .collect();
        let name = format!("idempotency.{}", tail.trim_end_matches('.'));
        assert!(known.contains(name.as_str()), "unknown metric {name}");
    }
    // Metrics Insights queries are gone with the {service} dimension set.
    assert!(
        !TEXT.contains("SCHEMA("),
        "a Metrics Insights SCHEMA query is left"
    );
}

#[test]
fn the_dashboard_shows_what_an_operator_needs() {
    let (dashboard, names) = dashboard(true);
    let (graphed, expressions) = graphed(&dashboard);
    let graphed_as = |namespace: &str, name: &str| uses(&graphed, namespace, name);
    let per_function = |name: &str| {
        let lines = graphed_as("Idempotency", name);
        for function in ["OrdersApiFunction", "PaymentsConsumerFunction"] {
            let dimension = [("service".to_owned(), function.to_owned())];
            let found = lines.iter().any(|m| m.dimensions == dimension);
            assert!(found, "no {name} for {function} with the service dimension");
        }
    };
    for name in [
        metrics::EXECUTION,
        metrics::REPLAY,
        metrics::DUPLICATE_IN_FLIGHT,
        metrics::ERRORED,
        metrics::STORE_ERROR,
        metrics::LEASE_LOST,
        metrics::LOOKUP_LATENCY,
    ] {
        per_function(name);
    }
    // Conflicts, split per route.
    let conflicts = format!("MetricName=\"{}\"", metrics::CONFLICT);
    assert!(expressions.iter().any(|e| e.contains(&conflicts)));

    // The gauges, from the sweeper, per table.
    for gauge in [metrics::INFLIGHT, metrics::INFLIGHT_LAPSED] {
        let lines = graphed_as("Idempotency", gauge);
        assert!(!lines.is_empty(), "no {gauge} widget");
        for m in lines {
            let table = [("table".to_owned(), "IdempotencyTable".to_owned())];
            assert_eq!(m.dimensions, table, "{gauge} in {}", m.widget);
        }
    }
    for name in SWEEPER_METRICS {
        let lines = graphed_as("Idempotency", name);
        let sweeper = [("service".to_owned(), "sweeper".to_owned())];
        assert!(lines.iter().any(|m| m.dimensions == sweeper), "no {name}");
    }
    for (namespace, name) in AWS_METRICS {
        assert!(
            !graphed_as(namespace, name).is_empty(),
            "no {namespace} {name}"
        );
    }
    for function in [
        "OrdersApiFunction",
        "PaymentsConsumerFunction",
        "SweeperFunction",
    ] {
        for name in ["Errors", "Throttles"] {
            let lines = graphed_as("AWS/Lambda", name);
            let dimension = [("FunctionName".to_owned(), function.to_owned())];
            assert!(
                lines.iter().any(|m| m.dimensions == dimension),
                "{name} {function}"
            );
        }
    }

    // Annotations: the replay-ratio target and the lookup-latency targets.
    let ratio = widget(&dashboard, "Replay ratio");
    assert_eq!(horizontal_lines(ratio), [5.0]);
    let ratio_text = ratio.to_string();
    for name in [metrics::REPLAY, metrics::EXECUTION] {
        assert!(ratio_text.contains(name), "the ratio widget lacks {name}");
    }
    let latency = widget(&dashboard, "Lookup latency");
    assert_eq!(horizontal_lines(latency), [1.0, 3.0]);
    let stats: BTreeSet<&str> = graphed
        .iter()
        .filter(|m| m.name == metrics::LOOKUP_LATENCY)
        .filter_map(|m| m.stat.as_deref())
        .collect();
    assert_eq!(stats, BTreeSet::from(["p50", "p99"]));

    // The alarm widget lists every alarm.
    for (id, _) in resources_of("AWS::CloudWatch::Alarm") {
        let arn = format!("{id}.Arn");
        assert!(names.contains(&arn), "the alarm widget lacks {id}");
    }
}

fn uses<'a>(graphed: &'a [Graphed], namespace: &str, name: &str) -> Vec<&'a Graphed> {
    graphed
        .iter()
        .filter(|m| m.namespace == namespace && m.name == name)
        .collect()
}

/// The widget whose title starts with `title_start`.
fn widget<'a>(dashboard: &'a Json, title_start: &str) -> &'a Json {
    dashboard["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| {
            let title = w["properties"]["title"].as_str().unwrap_or_default();
            title.starts_with(title_start)
        })
        .unwrap_or_else(|| panic!("no widget titled {title_start}..."))
}

/// The values of a widget's horizontal annotations.
fn horizontal_lines(widget: &Json) -> Vec<f64> {
    widget["properties"]["annotations"]["horizontal"]
        .as_array()
        .map(|a| a.iter().filter_map(|h| h["value"].as_f64()).collect())
        .unwrap_or_default()
}

#[test]
fn the_dashboard_names_the_sweeper_only_with_it() {
    let (_, variables) = dashboard_sub();
    let names: BTreeSet<&str> = variables.keys().filter_map(Value::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["SweeperAlarms", "SweeperLambdaMetrics"])
    );
    for (name, value) in variables {
        let (with, without) = sweeper_branches(value, name.as_str().unwrap());
        assert_eq!(without.as_str(), Some(""), "{name:?}");
        // Each goes after the body's last list item: its comma comes with it.
        assert!(sub_text(with).trim_start().starts_with(','), "{name:?}");
    }

    let alarm_ids = |only_unconditional: bool| -> BTreeSet<String> {
        resources_of("AWS::CloudWatch::Alarm")
            .into_iter()
            .filter(|(_, r)| !only_unconditional || r.get("Condition").is_none())
            .map(|(id, _)| format!("{id}.Arn"))
            .collect()
    };
    let lambda_functions = |graphed: &[Graphed]| -> BTreeSet<String> {
        graphed
            .iter()
            .filter(|m| m.namespace == "AWS/Lambda")
            .flat_map(|m| m.dimensions.iter().map(|(_, value)| value.clone()))
            .collect()
    };
    let functions = |list: &[&str]| list.iter().map(|f| f.to_string()).collect();
    for sweeper in [true, false] {
        let (dashboard, names) = dashboard(sweeper);
        let listed: BTreeSet<String> = dashboard["widgets"][0]["properties"]["alarms"]
            .as_array()
            .expect("the first widget lists the alarms")
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let (graphed, _) = graphed(&dashboard);
        let mut expected = vec!["OrdersApiFunction", "PaymentsConsumerFunction"];
        if sweeper {
            assert_eq!(listed, alarm_ids(false));
            expected.push("SweeperFunction");
        } else {
            assert_eq!(listed, alarm_ids(true));
            let text = dashboard.to_string();
            for resource in SWEEPER_RESOURCES {
                assert!(!text.contains(resource), "Sweeper=false: {resource}");
                assert!(
                    !names.iter().any(|n| n.contains(resource)),
                    "Sweeper=false: ${{{resource}}}"
                );
            }
        }
        assert_eq!(lambda_functions(&graphed), functions(&expected));

        // The sweeper's own widgets stay, and say when they have data.
        let sweeper_metrics: Vec<&str> = SWEEPER_METRICS
            .into_iter()
            .chain([metrics::INFLIGHT, metrics::INFLIGHT_LAPSED])
            .collect();
        for name in sweeper_metrics {
            let lines = uses(&graphed, "Idempotency", name);
            assert!(!lines.is_empty(), "Sweeper={sweeper}: no {name}");
            for m in lines {
                assert!(m.widget.ends_with(" (Sweeper=true)"), "{}", m.widget);
            }
        }
    }
}
