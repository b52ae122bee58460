//! Graceful shutdown through [`server::app::serve`]: a request in flight when the
//! signal comes still gets its answer, and then the listener is gone.

use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Route, get, handler};
use tokio::sync::{Notify, oneshot};

/// How long the slow handler takes: long enough that shutdown surely starts first.
const WORK: Duration = Duration::from_millis(500);

#[handler]
async fn slow(started: Data<&Arc<Notify>>) -> &'static str {
    started.notify_one();
    tokio::time::sleep(WORK).await;
    "done"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish_then_refuses_new_ones() {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("a free port");
    let addr = *acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr())
        .expect("a TCP address");
    let started = Arc::new(Notify::new());
    let endpoint = Route::new().at("/slow", get(slow)).data(started.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server::app::serve(
        acceptor,
        endpoint,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(10),
    ));

    let client = reqwest::Client::new();
    let in_flight = tokio::spawn(client.get(format!("http://{addr}/slow")).send());
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("the request reaches the handler");
    stop.send(())
        .expect("the server is still waiting for the signal");

    let resp = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the in-flight request is answered within the grace period")
        .expect("the request task")
        .expect("the in-flight request is answered, not cut off");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("a body"), "done");

    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns once the request is done")
        .expect("the server task")
        .expect("serve returns Ok");

    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted after shutdown"
    );
}
