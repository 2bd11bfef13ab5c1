//! DynamoDB's time to live on Spin: a cron component (world
//! `fermyon:spin-cron/spin-cron@2.0.0`) whose every event runs one sweep of expired items
//! (`dynamodb::ttl::sweep`, within `BUDGET`). Build it with
//! `bash scripts/build-components.sh dynamodb-ttl` (`build/components/dynamodb-ttl.wasm`).
//!
//! A crate of its own, as the scraper's cron export is, so that only this component
//! exports a cron handler.

#[cfg(target_os = "wasi")]
#[allow(unsafe_code)] // wit-bindgen's export glue
mod entry {
    spin_sdk::wit_bindgen::generate!({
        world: "spin-cron",
        path: "../../wit/spin-cron.wit",
        runtime_path: "::spin_sdk::wit_bindgen::rt",
    });

    use dynamodb::ttl::Budget;

    /// What one sweep may read: Spin lets a component instance hold 256
    /// compare-and-swaps, and each partition with expired items takes at least one.
    const BUDGET: Budget = Budget {
        items: 2_000,
        partitions: 100,
    };

    struct Cron;

    impl Guest for Cron {
        fn handle_cron_event(_metadata: Metadata) -> Result<(), Error> {
            let env = kit::host::spin::env(kit::host::spin::Uses::NOTHING);
            spin_sdk::http::run(async move {
                match dynamodb::ttl::sweep(&env, BUDGET).await {
                    // `sweep` wrote the sweep's log line.
                    Ok(_) => Ok(()),
                    Err(e) => Err(Error::Other(e.kind.type_name().to_owned())),
                }
            })
        }
    }

    export!(Cron);
}
