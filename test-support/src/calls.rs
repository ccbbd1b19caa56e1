//! A call-counting SDK interceptor: how many DynamoDB operations a request cost.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::operation::{
    delete_item::DeleteItemInput, describe_table::DescribeTableInput, get_item::GetItemInput,
    put_item::PutItemInput, transact_write_items::TransactWriteItemsInput,
    update_item::UpdateItemInput,
};

/// Records the name of every DynamoDB operation a client executes (once per call,
/// however many attempts the SDK makes).
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: Arc<Mutex<Vec<&'static str>>>,
}

impl CallCounter {
    /// The operations since the last `take`, oldest first.
    pub fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let input = context.input();
        let name = if input.downcast_ref::<PutItemInput>().is_some() {
            "PutItem"
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            "UpdateItem"
        } else if input.downcast_ref::<GetItemInput>().is_some() {
            "GetItem"
        } else if input.downcast_ref::<DeleteItemInput>().is_some() {
            "DeleteItem"
        } else if input.downcast_ref::<TransactWriteItemsInput>().is_some() {
            "TransactWriteItems"
        } else if input.downcast_ref::<DescribeTableInput>().is_some() {
            "DescribeTable"
        } else {
            "Other"
        };
        self.calls.lock().unwrap().push(name);
        Ok(())
    }
}
