"""Terraform as the flow-logs deploy runs it: a subprocess in the configuration's
directory (``-chdir``), never asking for input, its output the deploy's own.

A dry run prints each command as one JSON line (``{"command": [...]}``) and runs none;
``terraform output -json`` then answers with the caller's placeholders.

An interrupt is passed on, never turned into a kill: terraform runs in a session of its
own (a Ctrl-C at the terminal reaches the deploy only), and each SIGINT or SIGTERM the
deploy receives is forwarded as one SIGINT, which terraform answers by finishing the
calls in flight, writing its state and releasing the lock (a second one makes it quit
at once, as at its own terminal). The deploy then fails, saying so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.aws import DeployError, Emit
from deploy.output import raise_next_interrupt

#: What the first, targeted apply creates: the repository the images are pushed to
#: (Terraform owns it, with its immutable tags, scanning and key) and its lifecycle.
REPOSITORY_TARGETS = ("aws_ecr_repository.app", "aws_ecr_lifecycle_policy.app")


@dataclass(frozen=True)
class Terraform:
    shown: str  # the binary as configured, for a dry run's lines
    binary: str  # the one run
    directory: Path
    dry_run: bool
    emit: Emit
    backend_config: Path | None = None
    var_file: Path | None = None

    def init(self) -> None:
        backend = [f"-backend-config={self.backend_config}"] if self.backend_config else []
        self.run("init", "-input=false", *backend)

    def apply(self, image_tag: str, targets: Sequence[str] = ()) -> None:
        # image_tag has no default (infra/variables.tf), so even a targeted apply needs it.
        var_file = [f"-var-file={self.var_file}"] if self.var_file else []
        self.run(
            "apply",
            "-input=false",
            "-auto-approve",
            *(f"-target={target}" for target in targets),
            *var_file,
            f"-var=image_tag={image_tag}",
        )

    def outputs(self, placeholder: Mapping[str, Any]) -> dict[str, Any]:
        """Each output's value (in a dry run, ``placeholder``)."""
        printed = self.run("output", "-json", capture=True)
        if self.dry_run:
            return dict(placeholder)
        try:
            parsed = json.loads(printed)
        except json.JSONDecodeError as exc:
            raise DeployError(f"terraform output -json printed no JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise DeployError("terraform output -json printed no object")
        return {name: item.get("value") for name, item in parsed.items()}

    def run(self, *args: str, capture: bool = False) -> str:
        """``terraform -chdir=DIR args``; its stdout when ``capture``, else it is ours."""
        if self.dry_run:
            self.emit(json.dumps({"command": [self.shown, f"-chdir={self.directory}", *args]}))
            return ""
        command = [self.binary, f"-chdir={self.directory}", *args]
        env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
        with tempfile.TemporaryFile("w+") as printed:
            process = subprocess.Popen(
                command, stdout=printed if capture else None, env=env, start_new_session=True
            )
            interrupted = False
            while True:
                try:
                    code = process.wait()
                    break
                except KeyboardInterrupt:
                    process.send_signal(signal.SIGINT)
                    interrupted = True
                    raise_next_interrupt()  # a second one is passed on too
            if interrupted:
                raise DeployError(
                    f"interrupted: terraform {args[0]} was asked to stop (SIGINT) and exited "
                    f"{code}; what it had applied is in its state: run the deploy again"
                )
            if code != 0:
                raise DeployError(f"terraform {args[0]} failed with exit code {code}")
            printed.seek(0)
            return printed.read()
