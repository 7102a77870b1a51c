"""Stopping a helper process the tests started: by its PID, SIGTERM first, SIGKILL after `timeout`."""
import signal
import subprocess


def stop_process(proc, timeout=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
