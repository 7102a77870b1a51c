"""Helper processes the tests start: a free loopback port for each, waiting for one to answer, and stopping it
by its PID (SIGTERM first, SIGKILL after `timeout`)."""
import signal
import socket
import subprocess
import time

import requests


_ports_given = set()


def free_port():
    """A loopback port nothing listens on, never one this test process was given before: the kernel may hand
    the same ephemeral port to two binds in a row once the first is closed, and a server given it twice
    (its gRPC port equal to its metrics port) fails to start."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def stop_process(proc, timeout=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http_ok(url, proc, log_path, timeout=30):
    """Until GET `url` answers 200; fails with the process's log if it exits or `timeout` passes."""
    deadline = time.time() + timeout
    while True:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise AssertionError(f"{url} did not answer 200 (exit code {proc.poll()}):\n{open(log_path).read()}")
        time.sleep(0.05)
