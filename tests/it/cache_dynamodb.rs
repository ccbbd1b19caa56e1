//! The warm cache in front of DynamoDB: a replay in a warm environment costs no
//! DynamoDB call. Needs `AWS_ENDPOINT_URL_DYNAMODB`: run with `make test`.

use crate::support;
use lambda_idempotency::testing as behaviour;

use behaviour::{request, start};
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{BeginOutcome, CachedStore, Store};

#[tokio::test]
async fn replays_from_a_warm_cache_cost_zero_calls() {
    let (client, calls) = support::counting_client().await;
    let table = support::fresh_table(&client, &AttributeNames::default()).await;
    let store = CachedStore::new(DynamoDbStore::new(client.clone(), table.clone()));
    calls.take();

    let r = request("{}");
    let lease = start(&store, &r).await;
    store.complete(&lease, b"ok").await.unwrap();
    assert_eq!(calls.take(), ["PutItem", "UpdateItem"], "new key");
    for _ in 0..3 {
        assert!(matches!(
            store.begin(&r).await.unwrap(),
            BeginOutcome::Replay(_)
        ));
    }
    assert_eq!(calls.take(), Vec::<&str>::new(), "replays from the cache");

    // A cold environment (a new cache) pays one call for the first replay, then none.
    let cold = CachedStore::new(DynamoDbStore::new(client, table));
    assert!(matches!(
        cold.begin(&r).await.unwrap(),
        BeginOutcome::Replay(_)
    ));
    assert!(matches!(
        cold.begin(&r).await.unwrap(),
        BeginOutcome::Replay(_)
    ));
    assert_eq!(calls.take(), ["PutItem"]);
}
