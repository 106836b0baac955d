#!/usr/bin/env python3
"""CDK entry point: read the `lockgate` context, build the stacks, add cdk-nag."""

from aws_cdk import App

from infra.config import LockgateConfig
from infra.wiring import add_checks, build

app = App()
build(app, LockgateConfig.model_validate(app.node.try_get_context("lockgate") or {}))
add_checks(app)
app.synth()
