//! The server on a Redis watched by Sentinel (one master, one replica, one sentinel from
//! the local Redis image, on a private Docker network): the flows work, the master is
//! killed, the API answers 503 (never 500) until the sentinel promotes the replica, and
//! then the server, having asked the sentinel again, serves everything from the new
//! master with the data intact.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::cluster::{args, cli, docker};
use crate::helpers::*;

const MASTER_NAME: &str = "jwt-todo";

/// Containers and network of the test, removed on drop whatever happened.
struct Deployment {
    network: String,
    containers: Vec<String>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v", container])
                .output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

impl Deployment {
    async fn ip(&self, container: &str) -> String {
        docker(args(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            container,
        ]))
        .await
        .trim()
        .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_follows_a_sentinel_failover() {
    let image = std::env::var("REDIS_IMAGE").unwrap_or_else(|_| "jwt-todo-redis:local".to_owned());
    let tag = Uuid::new_v4().simple().to_string()[..10].to_owned();
    let network = format!("jwt-todo-sentinel-{tag}");
    docker(args(&["network", "create", &network])).await;
    let mut deployment = Deployment {
        network: network.clone(),
        containers: Vec::new(),
    };
    let (master, replica, sentinel) = (
        format!("{network}-master"),
        format!("{network}-replica"),
        format!("{network}-sentinel"),
    );
    let server = [
        "redis-server",
        "--bind",
        "0.0.0.0",
        "--protected-mode",
        "no",
    ];

    deployment.containers.push(master.clone());
    let mut run = args(&[
        "run",
        "-d",
        "--name",
        &master,
        "--network",
        &network,
        &image,
    ]);
    run.extend(args(&server));
    docker(run).await;
    let master_ip = deployment.ip(&master).await;

    deployment.containers.push(replica.clone());
    let mut run = args(&[
        "run",
        "-d",
        "--name",
        &replica,
        "--network",
        &network,
        &image,
    ]);
    run.extend(args(&server));
    run.extend(args(&["--replicaof", &master_ip, "6379"]));
    docker(run).await;
    let replica_ip = deployment.ip(&replica).await;

    // Sentinel rewrites its configuration file: give it one of its own in the container.
    let conf = std::env::temp_dir().join(format!("{network}.conf"));
    std::fs::write(
        &conf,
        format!(
            "port 26379\nbind 0.0.0.0\nprotected-mode no\n\
             sentinel monitor {MASTER_NAME} {master_ip} 6379 1\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 5000\n"
        ),
    )
    .expect("write sentinel.conf");
    deployment.containers.push(sentinel.clone());
    docker(args(&[
        "create",
        "--name",
        &sentinel,
        "--network",
        &network,
        &image,
        "redis-server",
        "/data/sentinel.conf",
        "--sentinel",
    ]))
    .await;
    let conf_path = conf.to_string_lossy().into_owned();
    docker(args(&[
        "cp",
        &conf_path,
        &format!("{sentinel}:/data/sentinel.conf"),
    ]))
    .await;
    let _ = std::fs::remove_file(&conf);
    docker(args(&["start", &sentinel])).await;
    let sentinel_ip = deployment.ip(&sentinel).await;

    // The sentinel knows the master and its replica; the replica is in sync.
    eventually(
        Duration::from_secs(15),
        "sentinel sees master and replica",
        || {
            let (sentinel, replica) = (sentinel.clone(), replica.clone());
            async move {
                let replicas = cli(
                    &sentinel,
                    &["-p", "26379", "sentinel", "replicas", MASTER_NAME],
                )
                .await;
                let link = cli(&replica, &["info", "replication"]).await;
                replicas.contains("slave") && link.contains("master_link_status:up")
            }
        },
    )
    .await;

    let app = spawn_app_with(&[
        (
            "REDIS_SENTINEL_URLS",
            &format!("redis://{sentinel_ip}:26379"),
        ),
        ("REDIS_SENTINEL_MASTER", MASTER_NAME),
    ])
    .await;
    let pair = app.new_user("sentinel.user").await;
    assert_eq!(
        app.create_todo(&pair.access, "before").await.status(),
        StatusCode::CREATED
    );
    let revoked = app
        .login_ok("sentinel.user", "a fine long passphrase")
        .await;
    assert_eq!(app.logout(&revoked.access).await.status(), StatusCode::OK);
    assert_unauthorized(app.me(&revoked.access).await, Some("invalid_token")).await;

    // Kill the master once the replica has everything.
    eventually(Duration::from_secs(10), "replica caught up", || {
        let master = master.clone();
        async move {
            let info = cli(&master, &["info", "replication"]).await;
            let field = |prefix: &str| {
                info.lines()
                    .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_owned))
            };
            let offset = field("master_repl_offset:");
            let acked = field("slave0:").and_then(|s| {
                s.split(',')
                    .find_map(|kv| kv.strip_prefix("offset=").map(str::to_owned))
            });
            offset.is_some() && offset == acked
        }
    })
    .await;
    docker(args(&["kill", &master])).await;

    let mut seen = std::collections::BTreeMap::<u16, usize>::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = app.me(&pair.access).await.status();
        *seen.entry(status.as_u16()).or_default() += 1;
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "during the failover: {status}"
        );
        let revoked_status = app.me(&revoked.access).await.status();
        assert!(
            revoked_status == StatusCode::UNAUTHORIZED
                || revoked_status == StatusCode::SERVICE_UNAVAILABLE,
            "revoked token during the failover: {revoked_status}"
        );
        if status == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failover within 20s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("sentinel failover: {seen:?}");
    assert!(
        seen.get(&503).is_some_and(|n| *n > 0),
        "the outage was answered with 503: {seen:?}"
    );
    let promoted = cli(
        &sentinel,
        &[
            "-p",
            "26379",
            "sentinel",
            "get-master-addr-by-name",
            MASTER_NAME,
        ],
    )
    .await;
    assert!(promoted.contains(&replica_ip), "{promoted}");

    // Writes go to the promoted replica; the data and the revocation survived.
    let todos: Value = app
        .get("/todo", &pair.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(todos["items"].as_array().map(Vec::len), Some(1), "{todos}");
    assert_eq!(
        app.create_todo(&pair.access, "after").await.status(),
        StatusCode::CREATED
    );
    let next = tokens(app.refresh(&pair.refresh).await).await;
    assert_eq!(app.me(&next.access).await.status(), StatusCode::OK);
    assert_unauthorized(app.me(&revoked.access).await, Some("invalid_token")).await;
    assert_eq!(app.logout(&next.access).await.status(), StatusCode::OK);
    assert_unauthorized(app.me(&next.access).await, Some("invalid_token")).await;
    let newcomer = app.new_user("after.sentinel").await;
    assert_eq!(app.me(&newcomer.access).await.status(), StatusCode::OK);
    drop(deployment);
}
