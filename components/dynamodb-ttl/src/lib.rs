//! DynamoDB's time to live on Spin: a cron component (world
//! `fermyon:spin-cron/spin-cron@2.0.0`) whose every event runs one sweep of expired items
//! (`dynamodb::ttl::sweep`, within `BUDGET`). Build it with
//! `bash scripts/build-components.sh dynamodb-ttl` (`build/components/dynamodb-ttl.wasm`).
//!
//! A crate of its own, as the scraper's cron export is, so that only this component
//! exports a cron handler.

/// What one sweep may read: Spin lets a component instance hold 256 compare-and-swaps,
/// and each partition with expired items takes at least one.
#[cfg(target_os = "wasi")]
const BUDGET: dynamodb::ttl::Budget = dynamodb::ttl::Budget {
    items: 2_000,
    partitions: 100,
};

/// One sweep; `sweep` writes its log line, failure included.
#[cfg(target_os = "wasi")]
async fn sweep(env: &kit::Env) -> Result<(), String> {
    match dynamodb::ttl::sweep(env, BUDGET).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.kind.type_name().to_owned()),
    }
}

#[cfg(target_os = "wasi")]
kit::spin_cron_component!(crate::sweep);
