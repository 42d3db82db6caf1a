"""Docker-free local invoke (``alchemiser invoke``): the stack's functions, each in a
fresh process, against a local stand-in of the stack's AWS resources (moto) and, with
``--alpaca``, the local Alpaca-compatible exchange.

``run`` reads template.yaml, starts a moto server on 127.0.0.1 and creates the
stack's tables, queues, topics, parameters and secrets from the template's own
definitions (``create_stack``). It then invokes the function the event is for (a
scheduled event: the orchestrator; an SQS event: the queue's worker; or
``--function``) with exactly the environment Lambda would give it (the template's,
with ``!Ref``/``!Sub``/``!GetAtt`` resolved to the local resources) plus the AWS
endpoint and fake credentials. Like Lambda's SQS event source mapping, it then delivers
what the invocation queued to the function subscribed to that queue, deletes the
messages of a successful batch and leaves failed ones. At the end it prints the ledger
rows, the SNS messages and (``--alpaca``) the orders the exchange accepted.

Each invocation runs ``devstack/child.py`` in a child process, which builds a Lambda-like
context, calls the handler and writes the response (or Lambda's error shape). The code is
the template's ``CodeUri`` on this environment's packages or, with ``--artifact DIR`` (a
build: ``DIR/layer/python`` and ``DIR/functions/<LogicalId>/``), the function's built
directory and the layer alone, in an isolated interpreter (what Lambda runs). This
package prints nothing itself: output goes through ``emit``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alchemiser.devstack.delivery import pump, redeliver
from alchemiser.devstack.functions import function_spec, pick_function
from alchemiser.devstack.session import Emit, Options, Session, artifact_code
from alchemiser.devstack.summary import summary
from alchemiser.devstack.template import load_template
from alchemiser.errors import ConfigError, EventError


def read_event(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read event {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise EventError(f"{path} is not JSON: {error}") from error


def run(options: Options, emit: Emit) -> int:
    """The whole local session; returns the worst exit status of the invocations (0 all
    succeeded, 1 any function error or failed batch item)."""
    if options.repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    event = read_event(options.event_path)
    template = load_template(options.template_path)
    target = options.function or pick_function(template, event)
    function_spec(template, target, environment=False)  # an unknown --function: before moto
    if options.artifact is not None:
        artifact_code(options.artifact, target)  # a missing build: before moto too
    with Session(options, emit) as session:
        for delivery in range(1, options.repeat + 1):
            if delivery > 1:
                emit("")
                emit(f"== delivery {delivery} of {options.repeat}: the same event again")
            why = str(options.event_path)
            session.invoke(target, event, delivery, why)
            if pump(session, delivery) == 0 and delivery > 1:
                redeliver(session, delivery)
        summary(session)
        worst = 0 if all(i.ok for i in session.invocations) else 1
        emit("")
        emit(f"== exit {worst} (the worst of {len(session.invocations)} invocation(s))")
        return worst
