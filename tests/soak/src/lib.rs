//! The soak run's parts (the `soak` binary assembles them): the Redis child, the load balancer
//! in front of the instances, the fault plan, the two order books and their reconciliation, and
//! the counted log. The buyers' browser is the workspace's test browser (`wechat-test-support`).

pub mod applog;
pub mod balancer;
pub mod faults;
pub mod ledger;
pub mod reconcile;
pub mod redis;
pub mod refreshes;
pub mod rng;
pub mod tally;
pub mod world;
