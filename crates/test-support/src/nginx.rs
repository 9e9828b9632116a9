//! `nginx` in the foreground with a configuration written by the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::{Proc, current_user, wait_port};

/// The machine's nginx, or the one named by `IOTC_PROXY_NGINX` (to try another version).
pub fn binary() -> String {
    if let Ok(path) = std::env::var("IOTC_PROXY_NGINX") {
        return path;
    }
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| p.to_string())
        .unwrap_or_else(|| "nginx".to_string())
}

/// An nginx master process; stopped with SIGTERM on drop.
pub struct Nginx {
    pub proc: Proc,
    pub conf: PathBuf,
}

impl Nginx {
    /// Runs nginx with `http` as the body of its `http { }` block (prefix, pid, temp paths
    /// and logs in `dir`); waits until each of `ports` listens.
    pub fn start(dir: &Path, http: &str, ports: &[u16]) -> Nginx {
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        let text = format!(
            "daemon off;\nuser {user};\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/nginx-error.log info;\nevents {{ worker_connections 1024; }}\n\
             http {{\n  access_log {d}/nginx-access.log;\n  client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{http}\n}}\n",
            user = current_user()
        );
        std::fs::write(&conf, text).expect("write nginx.conf");
        let mut cmd = Command::new(binary());
        cmd.arg("-p").arg(dir).arg("-c").arg(&conf);
        let mut proc = Proc::spawn("nginx", cmd, dir);
        for &port in ports {
            wait_port(port, &mut proc);
        }
        Nginx { proc, conf }
    }
}

impl Drop for Nginx {
    /// SIGTERM: a SIGKILLed nginx master leaves its worker running (and listening on the
    /// test's ports).
    fn drop(&mut self) {
        self.proc.terminate(Duration::from_secs(5));
    }
}
