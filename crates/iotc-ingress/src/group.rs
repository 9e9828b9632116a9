//! One Redis round trip for the telegrams of many connections (group commit).
//!
//! Each connection stores what its AP sent together. A site's APs mostly send a few telegrams
//! each, so per connection a call would carry one or two, and the ingress would pay a call's
//! fixed cost (tasks woken, the pipeline handed over, the answer routed back, Redis reading
//! and answering) for nearly every telegram. Here a connection's commands join a queue; the
//! first connection to find the way free sends everything queued in one pipeline and hands
//! each connection its answers. While that call is on its way, the next connections queue
//! up, and the next call takes them together.
//!
//! A connection still waits for its own answers before it reads on, so its order and the
//! backpressure on its AP are as before. The commands of one connection stay together and in
//! order; a call takes whole connections' commands, at most [`CALL_COMMANDS`] unless one
//! connection alone has more.

use std::sync::Mutex;

use redis::{Cmd, ErrorKind, RedisError, RedisResult, Value};
use tokio::sync::oneshot;

use iotc_core::redis::Redis;

/// Commands one call carries at most when it groups connections.
pub const CALL_COMMANDS: usize = 4096;

/// The commands one connection queued, and where its answers go.
struct Job {
    commands: Vec<Cmd>,
    answer: oneshot::Sender<Result<Vec<Value>, String>>,
}

/// The queue and the turn to send it.
#[derive(Default)]
pub struct Group {
    waiting: Mutex<Vec<Job>>,
    turn: tokio::sync::Mutex<()>,
    #[cfg(test)]
    calls: std::sync::atomic::AtomicU64,
}

impl Group {
    /// Runs `commands` on `redis`, in one pipeline with those of other connections queued
    /// meanwhile; their answers, in order. A failed call fails each connection's commands.
    pub async fn query(&self, redis: &Redis, commands: Vec<Cmd>) -> RedisResult<Vec<Value>> {
        let (answer, mut answered) = oneshot::channel();
        self.lock_waiting().push(Job { commands, answer });
        loop {
            // Whichever comes first: a call that carried these commands, or the turn.
            let turn = tokio::select! {
                biased;
                answer = &mut answered => return answer_of(answer),
                turn = self.turn.lock() => turn,
            };
            if let Some(answer) = ready(&mut answered) {
                return answer;
            }
            let jobs = self.take_call();
            #[cfg(test)]
            self.calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            send(redis, jobs).await;
            drop(turn);
            if let Some(answer) = ready(&mut answered) {
                return answer;
            }
            // Others queued first filled the call: wait again.
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The jobs of the next call: queued first, whole, up to [`CALL_COMMANDS`] commands.
    fn take_call(&self) -> Vec<Job> {
        let mut waiting = self.lock_waiting();
        let mut commands = 0;
        let take = waiting
            .iter()
            .take_while(|job| {
                let first = commands == 0;
                commands += job.commands.len();
                first || commands <= CALL_COMMANDS
            })
            .count();
        waiting.drain(..take).collect()
    }
}

/// Sends the jobs' commands in one pipeline and hands each job its share of the answers.
async fn send(redis: &Redis, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    let mut sizes = Vec::with_capacity(jobs.len());
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        sizes.push(job.commands.len());
        for command in job.commands {
            pipe.add_command(command);
        }
        answers.push(job.answer);
    }
    metrics::histogram!("iotc_ingress_call_connections").record(sizes.len() as f64);
    // An error answer fails only the connection whose command it answers.
    pipe.ignore_errors();
    let result: RedisResult<Vec<Value>> = pipe.query_async(&mut redis.clone()).await;
    match result {
        Ok(values) => {
            let mut values = values.into_iter();
            for (size, answer) in sizes.into_iter().zip(answers) {
                let share: Vec<Value> = values.by_ref().take(size).collect();
                let _ = answer.send(own_answers(share));
            }
        }
        Err(e) => {
            let text = e.to_string();
            for answer in answers {
                let _ = answer.send(Err(text.clone()));
            }
        }
    }
}

/// A job's answers, or the first error among them.
fn own_answers(values: Vec<Value>) -> Result<Vec<Value>, String> {
    match values.iter().find_map(|v| match v {
        Value::ServerError(e) => Some(e.to_string()),
        _ => None,
    }) {
        Some(error) => Err(error),
        None => Ok(values),
    }
}

fn answer_of(
    answer: Result<Result<Vec<Value>, String>, oneshot::error::RecvError>,
) -> RedisResult<Vec<Value>> {
    match answer {
        Ok(answer) => answer.map_err(shared_call_failed),
        Err(_) => Err(shared_call_failed("the call was cancelled".into())),
    }
}

/// The answers of a job, once a call carried it (or an error if that call was dropped).
fn ready(
    answered: &mut oneshot::Receiver<Result<Vec<Value>, String>>,
) -> Option<RedisResult<Vec<Value>>> {
    match answered.try_recv() {
        Ok(answer) => Some(answer.map_err(shared_call_failed)),
        Err(oneshot::error::TryRecvError::Empty) => None,
        Err(oneshot::error::TryRecvError::Closed) => {
            Some(Err(shared_call_failed("the call was cancelled".into())))
        }
    }
}

fn shared_call_failed(detail: String) -> RedisError {
    RedisError::from((ErrorKind::Io, "Redis call failed", detail))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;

    fn push_and_set(list_value: usize, hash: &str) -> Vec<Cmd> {
        let mut push = redis::cmd("RPUSH");
        push.arg("order").arg(list_value);
        let mut set = redis::cmd("HSET");
        set.arg(hash).arg("f").arg("v");
        vec![push, set]
    }

    #[tokio::test]
    async fn connections_queued_meanwhile_share_one_call_and_keep_their_own_errors() {
        let server = test_support::Redis::start_temp();
        let redis = iotc_core::redis::connect(&server.url(), Default::default()).unwrap();
        let mut conn = redis.clone();
        let () = redis::cmd("SET")
            .arg("plain")
            .arg("x")
            .query_async(&mut conn)
            .await
            .unwrap();
        let group = Arc::new(Group::default());

        // A call on its way: the three connections below queue up behind it.
        let busy = group.turn.lock().await;
        let mut connections = Vec::new();
        for (i, hash) in ["a", "plain", "b"].into_iter().enumerate() {
            let (shared, redis) = (group.clone(), redis.clone());
            let commands = push_and_set(i, hash);
            connections.push(tokio::spawn(
                async move { shared.query(&redis, commands).await },
            ));
            while group.lock_waiting().len() <= i {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        drop(busy);
        let mut answers = Vec::new();
        for c in connections {
            answers.push(c.await.unwrap());
        }

        assert_eq!(
            group.calls.load(Ordering::Relaxed),
            1,
            "one call for all three"
        );
        assert_eq!(
            answers[0].as_ref().unwrap(),
            &[Value::Int(1), Value::Int(1)]
        );
        let refused = answers[1].as_ref().unwrap_err().to_string();
        assert!(refused.contains("WRONGTYPE"), "{refused}");
        assert_eq!(
            answers[2].as_ref().unwrap(),
            &[Value::Int(3), Value::Int(1)]
        );
        let order: Vec<String> = redis::cmd("LRANGE")
            .arg("order")
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(order, ["0", "1", "2"], "in the order they queued");
        assert!(group.lock_waiting().is_empty());
    }

    #[tokio::test]
    async fn a_call_takes_whole_connections_up_to_its_size() {
        let group = Group::default();
        for n in [CALL_COMMANDS - 10, 5, 5, 1] {
            let (answer, _) = oneshot::channel();
            let commands = vec![redis::cmd("PING"); n];
            group.lock_waiting().push(Job { commands, answer });
        }
        let sizes = |jobs: Vec<Job>| jobs.iter().map(|j| j.commands.len()).collect::<Vec<_>>();
        assert_eq!(sizes(group.take_call()), [CALL_COMMANDS - 10, 5, 5]);
        assert_eq!(sizes(group.take_call()), [1]);
        let (answer, _) = oneshot::channel();
        let commands = vec![redis::cmd("PING"); CALL_COMMANDS + 1];
        group.lock_waiting().push(Job { commands, answer });
        assert_eq!(
            sizes(group.take_call()),
            [CALL_COMMANDS + 1],
            "one alone may be larger"
        );
    }
}
