//! The Worker's entry points: what its fetch and cron handlers and its one Durable
//! Object class run, for an app described by [`WorkerApp`]. The entry crate only
//! declares the handlers and the class and delegates each event here.
//!
//! An object answers three kinds of call: a partition operation of the table layer
//! (the Worker's [`DoClient`](super::backends::DoClient)), a key-value operation (the
//! storage self-test's whole-table layout), and the cron handler's wake-up of an object
//! that runs a job on its alarm ([`Alarm`]).

use super::backends::{local_table, object_name, serve_kv_op, serve_partition_op, KV_OP_PATH};
use super::{env, env_with, js_request, request, response, Bindings, DO_BINDING};
use crate::table::{Mutation, Table};
use crate::{Env, Request, Response};
use std::rc::Rc;

/// The path the cron handler posts to an [`Alarm`]'s object to wake it.
const WAKE_PATH: &str = "/.wake";

/// A Durable Object that runs a job on its alarm, woken by the cron trigger: the
/// object of partition `partition` of `table`.
#[derive(Debug, Clone, Copy)]
pub struct Alarm {
    /// What the job is, for the log line of a failed wake-up.
    pub name: &'static str,
    pub table: &'static str,
    pub partition: &'static str,
    /// Whether the job keeps its state in that partition: its environment then reads
    /// and writes `table` in the object's own storage, with no subrequest.
    pub local: bool,
}

/// What a Worker built on this wing serves.
// The Workers runtime is single-threaded: no caller needs the futures to be `Send`.
#[allow(async_fn_in_trait)]
pub trait WorkerApp {
    /// Which tables are bound to which backend.
    const BINDINGS: Bindings;
    /// The objects that run jobs on their alarms.
    const ALARMS: &'static [Alarm];

    /// Rebuilds a shipped table mutation, for the objects that run it next to their
    /// items.
    fn mutations(kind: &str, args: serde_json::Value) -> Option<Box<dyn Mutation>>;

    /// Answers one request.
    async fn handle(req: Request, env: &Env) -> Response;

    /// Runs `alarm`'s job once; returns when its next run should start (ms since the
    /// epoch), if there is work left.
    async fn run_alarm(alarm: &Alarm, env: &Env) -> Option<i64>;
}

/// The fetch handler: one request through the app.
pub async fn fetch<A: WorkerApp>(
    req: worker::Request,
    worker_env: worker::Env,
) -> worker::Result<worker::Response> {
    let req = request(req).await?;
    let env = env(worker_env, A::BINDINGS);
    response(A::handle(req, &env).await)
}

/// The cron handler: the watchdog of the alarm chains, arming each [`Alarm`]'s alarm
/// now if none is pending.
pub async fn scheduled<A: WorkerApp>(env: &worker::Env) {
    for alarm in A::ALARMS {
        if let Err(e) = wake(env, alarm).await {
            worker::console_error!("waking {} failed: {e}", alarm.name);
        }
    }
}

async fn wake(env: &worker::Env, alarm: &Alarm) -> worker::Result<worker::Response> {
    let stub = env
        .durable_object(DO_BINDING)?
        .id_from_name(&object_name(alarm.table, alarm.partition))?
        .get_stub()?;
    let request = js_request(&format!("https://object{WAKE_PATH}"), "POST", None, None)?;
    stub.fetch_with_request(request).await
}

/// The Durable Object class's `fetch`.
pub async fn object_fetch<A: WorkerApp>(
    state: &worker::State,
    mut req: worker::Request,
) -> worker::Result<worker::Response> {
    let path = req.path();
    if path == WAKE_PATH {
        return arm(state).await;
    }
    let body = req.bytes().await?;
    let storage = state.storage();
    let out = if path == KV_OP_PATH {
        serve_kv_op(storage, &body).await
    } else {
        serve_partition_op(storage, &body, A::mutations).await
    };
    worker::Response::from_bytes(out)
}

/// Arms an alarm now unless one is pending (a running alarm's own next one, or a
/// backoff's), so the cron never doubles a chain and always restarts it.
async fn arm(state: &worker::State) -> worker::Result<worker::Response> {
    let storage = state.storage();
    let armed = storage.get_alarm().await?.is_some();
    if !armed {
        storage.set_alarm(0).await?;
    }
    worker::Response::ok(if armed { "already armed" } else { "armed" })
}

/// The Durable Object class's `alarm`: the job of the [`Alarm`] this object is (an
/// alarm is told nothing else), then its next alarm if there is work left.
pub async fn object_alarm<A: WorkerApp>(
    state: &worker::State,
    worker_env: &worker::Env,
) -> worker::Result<worker::Response> {
    let Some(alarm) = A::ALARMS.iter().find(|a| is_object(worker_env, state, a)) else {
        return worker::Response::ok("");
    };
    let local = alarm.local.then(|| {
        let table: Rc<dyn Table> = Rc::new(local_table(state.storage(), alarm.table));
        (alarm.table, table)
    });
    let env = env_with(worker_env.clone(), A::BINDINGS, local);
    if let Some(at) = A::run_alarm(alarm, &env).await {
        let offset = at - env.clock.now().timestamp_millis();
        state.storage().set_alarm(offset.max(0)).await?;
    }
    worker::Response::ok("")
}

fn is_object(env: &worker::Env, state: &worker::State, alarm: &Alarm) -> bool {
    let Ok(namespace) = env.durable_object(DO_BINDING) else {
        return false;
    };
    namespace
        .id_from_name(&object_name(alarm.table, alarm.partition))
        .is_ok_and(|id| id == state.id())
}
