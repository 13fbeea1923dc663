//! The server on a real Redis Cluster: 3 masters and 3 replicas in containers on a
//! private Docker network, built from the local Redis image (nothing is pulled). The
//! store contract and the API flows run on it; then the master holding some users' slots
//! is killed, the service answers 503 (never 500, never a wrong success) until its
//! replica is promoted, and then serves those users again with their data intact.
//!
//! Docker is driven through its CLI: the nodes must reach each other by the addresses
//! they announce, and so must this process (the host routes to Docker's bridge networks
//! on Linux). On a user-defined network every node announces its own address there.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::Duration;

use adapter_redis::{RedisStore, RedisStoreConfig};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::contract::store_contract;
use crate::helpers::*;

const SLOTS: u16 = 16384;
const PASSWORD: &str = "a fine long passphrase";

/// Runs `docker args…` off the async workers; its stdout, or a panic with its stderr.
pub async fn docker(args: Vec<String>) -> String {
    let shown = args.join(" ");
    let output = tokio::task::spawn_blocking(move || Command::new("docker").args(&args).output())
        .await
        .expect("docker task")
        .expect("the docker CLI runs");
    assert!(
        output.status.success(),
        "docker {shown}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// `redis-cli` inside a node's container, against that node.
pub async fn cli(container: &str, command: &[&str]) -> String {
    let mut all = args(&["exec", container, "redis-cli"]);
    all.extend(args(command));
    docker(all).await
}

/// CRC16/XMODEM of the hash tag, as Redis Cluster assigns slots.
fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|b| *b == b'{').and_then(|open| {
        let close = bytes[open + 1..].iter().position(|b| *b == b'}')?;
        (close > 0).then(|| &bytes[open + 1..open + 1 + close])
    });
    let mut crc: u16 = 0;
    for byte in tagged.unwrap_or(bytes) {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc % SLOTS
}

#[test]
fn slots_are_the_ones_redis_computes() {
    // Values from `CLUSTER KEYSLOT` on Redis 7.
    assert_eq!(slot("foo"), 12182);
    assert_eq!(slot("{user1000}.following"), slot("user1000"));
    assert_eq!(slot("123456789"), 0x31C3 % SLOTS);
}

struct Node {
    container: String,
    ip: String,
}

/// A running cluster; its containers and network are removed on drop, whatever happened.
struct Cluster {
    network: String,
    nodes: Vec<Node>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v", &node.container])
                .output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

/// A master as `CLUSTER NODES` shows it.
#[derive(Clone, Debug)]
struct Master {
    id: String,
    ip: String,
    slots: Vec<(u16, u16)>,
}

impl Cluster {
    async fn start() -> Self {
        let image =
            std::env::var("REDIS_IMAGE").unwrap_or_else(|_| "jwt-todo-redis:local".to_owned());
        let tag = Uuid::new_v4().simple().to_string()[..10].to_owned();
        let network = format!("jwt-todo-cluster-{tag}");
        docker(args(&["network", "create", &network])).await;
        let mut cluster = Cluster {
            network,
            nodes: Vec::new(),
        };
        for i in 1..=6 {
            let container = format!("jwt-todo-cluster-{tag}-{i}");
            // Registered before it starts, so drop removes it even if `run` half-fails.
            cluster.nodes.push(Node {
                container: container.clone(),
                ip: String::new(),
            });
            docker(args(&[
                "run",
                "-d",
                "--name",
                &container,
                "--network",
                &cluster.network,
                &image,
                "redis-server",
                "--bind",
                "0.0.0.0",
                "--protected-mode",
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "1000",
                "--save",
                "",
                "--appendonly",
                "no",
            ]))
            .await;
        }
        for node in &mut cluster.nodes {
            node.ip = docker(args(&[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &node.container,
            ]))
            .await
            .trim()
            .to_owned();
        }
        for node in &cluster.nodes {
            let name = node.container.clone();
            eventually(Duration::from_secs(10), "node answers PING", || {
                let name = name.clone();
                async move {
                    let out = tokio::task::spawn_blocking(move || {
                        Command::new("docker")
                            .args(["exec", &name, "redis-cli", "ping"])
                            .output()
                    })
                    .await
                    .expect("task")
                    .expect("docker runs");
                    String::from_utf8_lossy(&out.stdout).trim() == "PONG"
                }
            })
            .await;
        }
        // The first three become masters, each of the others a replica of one of them.
        let mut create = args(&[
            "exec",
            &cluster.nodes[0].container,
            "redis-cli",
            "--cluster",
            "create",
        ]);
        create.extend(cluster.nodes.iter().map(|n| format!("{}:6379", n.ip)));
        create.extend(args(&["--cluster-replicas", "1", "--cluster-yes"]));
        docker(create).await;
        // Every node agrees the cluster is up, and every replica is in sync.
        for node in &cluster.nodes {
            let name = node.container.clone();
            eventually(
                Duration::from_secs(15),
                "cluster_state:ok and replicas linked",
                || {
                    let name = name.clone();
                    async move {
                        let info = cli(&name, &["cluster", "info"]).await;
                        let replication = cli(&name, &["info", "replication"]).await;
                        info.contains("cluster_state:ok")
                            && (replication.contains("role:master")
                                || replication.contains("master_link_status:up"))
                    }
                },
            )
            .await;
        }
        cluster
    }

    fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://{}:6379", n.ip))
            .collect()
    }

    fn container_of(&self, ip: &str) -> &str {
        &self
            .nodes
            .iter()
            .find(|n| n.ip == ip)
            .expect("a node of ours")
            .container
    }

    /// The masters serving slots, as `via` sees them.
    async fn masters(&self, via: &str) -> Vec<Master> {
        cli(via, &["cluster", "nodes"])
            .await
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let flags = fields.get(2)?;
                if !flags.contains("master") || flags.contains("fail") {
                    return None;
                }
                let slots: Vec<(u16, u16)> = fields
                    .get(8..)?
                    .iter()
                    .filter(|r| !r.starts_with('['))
                    .filter_map(|r| match r.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => r.parse().ok().map(|s| (s, s)),
                    })
                    .collect();
                let id = (*fields.first()?).to_owned();
                let ip = fields.get(1)?.split(':').next()?.to_owned();
                (!slots.is_empty()).then_some(Master { id, ip, slots })
            })
            .collect()
    }
}

fn owner(masters: &[Master], slot: u16) -> &Master {
    masters
        .iter()
        .find(|m| m.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
        .expect("every slot is served")
}

/// Waits until the replica of `master` has every write the master has acknowledged, so
/// killing the master loses nothing (replication is asynchronous).
async fn replicas_caught_up(cluster: &Cluster, master: &Master) {
    let container = cluster.container_of(&master.ip).to_owned();
    eventually(Duration::from_secs(10), "replica caught up", || {
        let container = container.clone();
        async move {
            let info = cli(&container, &["info", "replication"]).await;
            let field = |name: &str| -> Option<String> {
                info.lines()
                    .find_map(|l| l.trim().strip_prefix(name).map(str::to_owned))
            };
            let master_offset = field("master_repl_offset:");
            let replica_offset = field("slave0:").and_then(|s| {
                s.split(',')
                    .find_map(|kv| kv.strip_prefix("offset=").map(str::to_owned))
            });
            master_offset.is_some() && master_offset == replica_offset
        }
    })
    .await;
}

/// A registered, logged-in user and where their keys live.
struct Member {
    name: String,
    slot: u16,
    tokens: Tokens,
}

async fn register(app: &TestApp, name: &str) -> Member {
    let tokens = app.new_user_with(name, Some("+4915112345678")).await;
    let me: Value = app.me(&tokens.access).await.json().await.expect("json");
    let id = me["id"].as_str().expect("id");
    Member {
        name: name.to_owned(),
        slot: slot(&format!("{{u:{id}}}:user")),
        tokens,
    }
}

/// The flows every user goes through; `todos` is how many they made before.
async fn exercise(app: &TestApp, member: &Member, todos: usize) -> Tokens {
    let pair = app.login_ok(&member.name, PASSWORD).await;
    let me: Value = app.me(&pair.access).await.json().await.expect("json");
    assert_eq!(me["username"], member.name.as_str());
    assert_eq!(
        app.create_todo(&pair.access, "water the plants")
            .await
            .status(),
        StatusCode::CREATED
    );
    let list: Value = app
        .get("/todo", &pair.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(todos + 1),
        "{list}"
    );
    // A second device, listed, then signed out from the first ("others").
    let other = app.login_ok(&member.name, PASSWORD).await;
    let sessions: Value = app
        .get("/sessions", &pair.access)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        sessions["items"].as_array().is_some_and(|s| s.len() >= 2),
        "{sessions}"
    );
    let others = app
        .client
        .post(app.url("/logout?scope=others"))
        .bearer_auth(&pair.access)
        .send()
        .await
        .expect("sent");
    assert_eq!(others.status(), StatusCode::OK);
    assert_unauthorized(app.me(&other.access).await, Some("invalid_token")).await;
    // Refresh rotates; the spent token is theft and ends the session.
    let next = tokens(app.refresh(&pair.refresh).await).await;
    assert_eq!(app.me(&next.access).await.status(), StatusCode::OK);
    let spare = app.login_ok(&member.name, PASSWORD).await;
    assert_unauthorized(app.refresh(&pair.refresh).await, Some("invalid_token")).await;
    assert_unauthorized(app.me(&next.access).await, Some("invalid_token")).await;
    // Logout revokes at once.
    assert_eq!(app.logout(&spare.access).await.status(), StatusCode::OK);
    assert_unauthorized(app.me(&spare.access).await, Some("invalid_token")).await;
    app.login_ok(&member.name, PASSWORD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_a_redis_cluster_and_survives_a_master_failover() {
    let cluster = Cluster::start().await;
    let urls = cluster.urls();

    // The store contract on the cluster (before the server, whose worker would claim
    // the contract's notifications).
    let store = RedisStore::cluster(&urls, RedisStoreConfig::default()).expect("valid urls");
    store_contract(&store).await;
    drop(store);

    let app = spawn_app_with(&[("REDIS_CLUSTER_URLS", &urls.join(","))]).await;
    let masters = cluster.masters(&cluster.nodes[0].container).await;
    assert_eq!(masters.len(), 3, "{masters:?}");

    // Users until every master holds some.
    let mut members: Vec<Member> = Vec::new();
    let mut per_master: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..40 {
        let member = register(&app, &format!("member{i}")).await;
        *per_master
            .entry(owner(&masters, member.slot).id.clone())
            .or_default() += 1;
        members.push(member);
        if per_master.len() == masters.len() && per_master.values().all(|n| *n >= 1) {
            break;
        }
    }
    assert_eq!(per_master.len(), 3, "users on every master: {per_master:?}");
    let mut live: HashMap<String, Tokens> = HashMap::new();
    for member in &members {
        live.insert(member.name.clone(), exercise(&app, member, 0).await);
    }
    // A token revoked before the failure stays revoked after it.
    let revoked = app.login_ok(&members[0].name, PASSWORD).await;
    assert_eq!(app.logout(&revoked.access).await.status(), StatusCode::OK);

    // The master to kill: one holding users, not the outbox's (todo creation queues an
    // SMS there, which would make every user's todo creation wait with it).
    let outbox_master = owner(&masters, slot("{outbox}:due")).id.clone();
    let victim = masters
        .iter()
        .find(|m| m.id != outbox_master)
        .expect("two masters without the outbox")
        .clone();
    let (hit, spared): (Vec<&Member>, Vec<&Member>) = members
        .iter()
        .partition(|m| owner(&masters, m.slot).id == victim.id);
    assert!(!hit.is_empty() && !spared.is_empty());
    replicas_caught_up(&cluster, &victim).await;
    docker(args(&["kill", cluster.container_of(&victim.ip)])).await;

    // Until the replica takes over: 503, never 500 nor a success the store cannot
    // back; a revoked token never comes back to life. Users on healthy masters may get
    // 503s too: the redis-rs cluster client holds every request while it refreshes its
    // slot map (seen here: about 2 s of 503s for everyone).
    let hit_tokens = live[&hit[0].name].clone();
    let spared_tokens = live[&spared[0].name].clone();
    let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
    let mut spared_seen: BTreeMap<u16, usize> = BTreeMap::new();
    let killed_at = tokio::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = app.me(&hit_tokens.access).await.status();
        *seen.entry(status.as_u16()).or_default() += 1;
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "during the failover: {status}"
        );
        let spared_status = app.me(&spared_tokens.access).await.status();
        *spared_seen.entry(spared_status.as_u16()).or_default() += 1;
        assert!(
            spared_status == StatusCode::OK || spared_status == StatusCode::SERVICE_UNAVAILABLE,
            "a user on a healthy master: {spared_status}"
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
    eprintln!(
        "failover after {:?}: hit user {seen:?}, spared user {spared_seen:?}",
        killed_at.elapsed()
    );
    assert!(
        seen.get(&503).is_some_and(|n| *n > 0),
        "the outage was answered with 503: {seen:?}"
    );

    // After: the promoted replica serves the hit users' slots with their data; every
    // flow works again for everyone.
    let survivor = cluster
        .nodes
        .iter()
        .find(|n| n.ip != victim.ip)
        .expect("a survivor");
    eventually(
        Duration::from_secs(5),
        "a replica promoted in the survivors' view",
        || async {
            let after = cluster.masters(&survivor.container).await;
            after.len() == 3 && after.iter().all(|m| m.ip != victim.ip)
        },
    )
    .await;
    assert_unauthorized(app.me(&revoked.access).await, Some("invalid_token")).await;
    for member in &members {
        let tokens = &live[&member.name];
        assert_eq!(
            app.me(&tokens.access).await.status(),
            StatusCode::OK,
            "{}",
            member.name
        );
        let next = app.refresh(&tokens.refresh).await;
        assert_eq!(next.status(), StatusCode::CREATED, "{}", member.name);
        exercise(&app, member, 1).await;
    }
    let newcomer = register(&app, "after.failover").await;
    assert_eq!(
        app.create_todo(&newcomer.tokens.access, "new")
            .await
            .status(),
        StatusCode::CREATED
    );
}
