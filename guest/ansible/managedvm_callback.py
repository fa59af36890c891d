# managedvm's stdout callback for ansible-playbook: one JSON object per
# line, per task result and at the end per host, written to the file named
# by MANAGEDVM_ANSIBLE_EVENTS. Task output other than the message is never
# written; no_log results are already censored by Ansible.
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
    name: managedvm
    type: stdout
    short_description: JSON lines for managedvm
    description:
      - Writes one JSON object per task result to the file in MANAGEDVM_ANSIBLE_EVENTS.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'managedvm'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        path = os.environ.get('MANAGEDVM_ANSIBLE_EVENTS')
        self._out = open(path, 'a', encoding='utf-8') if path else None

    def _emit(self, ev):
        line = json.dumps(ev, default=str)
        if self._out is not None:
            self._out.write(line + '\n')
            self._out.flush()
        else:
            self._display.display(line)

    def _result(self, status, result, ignore_errors=False):
        r = result._result
        msg = r.get('msg') or ''
        if status in ('failed', 'unreachable') and not msg:
            msg = r.get('stderr') or r.get('module_stderr') or ''
        if r.get('_ansible_no_log') or r.get('censored'):
            msg = 'the output has been hidden (no_log)'
        self._emit({
            'event': 'task',
            'host': result._host.get_name(),
            'task': result._task.get_name(),
            'action': result._task.action,
            'status': status,
            'changed': bool(r.get('changed', False)),
            'ignored': bool(ignore_errors),
            'msg': str(msg)[:4000],
        })

    def v2_runner_on_ok(self, result):
        self._result('ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result('failed', result, ignore_errors)

    def v2_runner_on_unreachable(self, result):
        self._result('unreachable', result)

    def v2_runner_on_skipped(self, result):
        self._result('skipped', result)

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for h in sorted(stats.processed.keys()):
            hosts[h] = stats.summarize(h)
        self._emit({'event': 'stats', 'hosts': hosts})
