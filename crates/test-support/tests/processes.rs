//! The harness itself: each process starts, answers and keeps (or loses) data as documented.

use std::net::TcpStream;
use std::time::Duration;

use test_support::{Mosquitto, Nginx, Persistence, Redis, RedisCluster, free_port, temp_dir};

fn set_get(redis: &Redis, value: Option<&str>) -> Option<String> {
    let mut conn = redis.sync_conn();
    if let Some(v) = value {
        let () = redis::cmd("SET").arg("k").arg(v).query(&mut conn).unwrap();
    }
    redis::cmd("GET").arg("k").query(&mut conn).unwrap()
}

#[test]
fn redis_with_aof_always_keeps_acknowledged_writes_across_sigkill() {
    let dir = temp_dir();
    let mut redis = Redis::start_with(dir.path(), Persistence::AofAlways);
    assert_eq!(set_get(&redis, Some("v")).as_deref(), Some("v"));
    redis.restart();
    assert_eq!(set_get(&redis, None).as_deref(), Some("v"));
}

#[test]
fn redis_without_persistence_is_empty_after_restart() {
    let mut redis = Redis::start_temp();
    set_get(&redis, Some("v"));
    redis.restart();
    assert_eq!(set_get(&redis, None), None);
    let port = redis.port;
    drop(redis);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "killed on drop"
    );
}

#[test]
fn redis_cluster_has_three_masters_and_three_replicas() {
    let cluster = RedisCluster::start();
    assert_eq!(cluster.urls().len(), 6);
    let mut conn = cluster.nodes[0].sync_conn();
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).unwrap();
    assert_eq!(nodes.matches("master").count(), 3, "{nodes}");
    assert_eq!(nodes.matches("slave").count(), 3, "{nodes}");
}

#[test]
fn mosquitto_stops_and_starts_again_on_the_same_port() {
    let dir = temp_dir();
    let mut broker = Mosquitto::start_persistent(dir.path());
    assert!(TcpStream::connect(("127.0.0.1", broker.port)).is_ok());
    broker.stop();
    assert!(TcpStream::connect(("127.0.0.1", broker.port)).is_err());
    broker.start_again();
    assert!(TcpStream::connect(("127.0.0.1", broker.port)).is_ok());
}

#[test]
fn nginx_serves_its_configuration() {
    let dir = temp_dir();
    let port = free_port();
    let http = format!("server {{ listen 127.0.0.1:{port}; location / {{ return 204; }} }}");
    let nginx = Nginx::start(dir.path(), &http, &[port]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    drop(nginx);
    // Its worker went with it: nothing listens on the test's port any more.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
