//! Real processes for the tests of every crate: `redis-server` (single, or a cluster of 3
//! masters with 3 replicas), `mosquitto`, `nginx` and this workspace's binaries, each on free
//! loopback ports in a temporary folder, killed when its handle drops (also when a test
//! panics; then the tail of its log is printed).

pub mod bins;
pub mod mosquitto;
pub mod nginx;
pub mod proc;
pub mod redis_server;

pub use bins::{bin, repo_root};
pub use mosquitto::Mosquitto;
pub use nginx::Nginx;
pub use proc::{Proc, current_user, free_port, temp_dir, wait_for, wait_port};
pub use redis_server::{Persistence, Redis, RedisCluster};
