#!/usr/bin/env python3
"""Prints the podman commands that run an Azure Container Instances compose file as one pod.

    container-pod.py CONFIG.yml POD CERT_DIR > pod.sh

CONFIG.yml is `docker-compose -f deploy/azure/docker-compose.yml config` (variables filled in).
An ACI container group shares one network namespace, as a podman pod does: the pod publishes
every service's ports, each service is a container in it, the Azure Files volume becomes a
local named volume and the secrets are mounted read-only from CERT_DIR. CPU and memory limits
are left out (podman on cgroup v1 hosts may refuse them); scripts/deploy-checks.sh checks them.
"""

import shlex
import sys

import yaml


def order(services):
    """Service names with every dependency before its dependents."""
    done, result = set(), []

    def visit(name):
        if name in done:
            return
        done.add(name)
        for dep in services[name].get("depends_on", []) or []:
            visit(dep)
        result.append(name)

    for name in sorted(services):
        visit(name)
    return result


def run_command(pod, name, svc, secrets, cert_dir):
    args = ["podman", "run", "-d", "--pod", pod, "--name", f"{pod}-{name}", "--restart", "always"]
    env = svc.get("environment", {}) or {}
    items = env.items() if isinstance(env, dict) else (e.split("=", 1) for e in env)
    for key, value in items:
        if value is not None:
            args += ["-e", f"{key}={value}"]
    for volume in svc.get("volumes", []) or []:
        if isinstance(volume, dict):
            args += ["-v", f"{pod}-{volume['source']}:{volume['target']}"]
        else:
            source, target = volume.split(":")[:2]
            args += ["-v", f"{pod}-{source}:{target}"]
    for secret in svc.get("secrets", []) or []:
        file = secrets[secret["source"]]["file"].rsplit("/", 1)[-1]
        args += ["-v", f"{cert_dir}/{file}:{secret['target']}:ro"]
    args.append(svc["image"])
    command = svc.get("command")
    if command:
        args += command if isinstance(command, list) else shlex.split(command)
    return " ".join(shlex.quote(a) for a in args)


def main():
    config_file, pod, cert_dir = sys.argv[1:4]
    config = yaml.safe_load(open(config_file))
    services = config["services"]
    ports = []
    for svc in services.values():
        for port in svc.get("ports", []) or []:
            if isinstance(port, dict):
                ports.append(f"{port['published']}:{port['target']}")
            else:
                ports.append(str(port))
    print(f"podman pod create --name {pod} " + " ".join(f"-p {p}" for p in ports))
    for volume in config.get("volumes", {}) or {}:
        print(f"podman volume create {pod}-{volume}")
    secrets = config.get("secrets", {}) or {}
    for name in order(services):
        print(run_command(pod, name, services[name], secrets, cert_dir))


if __name__ == "__main__":
    main()
