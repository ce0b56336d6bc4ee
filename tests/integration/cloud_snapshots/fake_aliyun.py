"""A fake Alibaba Cloud ECS RPC API on 127.0.0.1: verifies signature v1 as documented (written here apart from
ncbackup's), keeps snapshots in memory, answers DescribeSnapshots' JSON, and fails on demand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCESS_KEY_ID = "LTAI5tFakeKeyId0001"
ACCESS_KEY_SECRET = "fakeSecretOfTheEcsTests0123456789"


def documented_signature(query: dict[str, str], secret: str) -> str:
    """help.aliyun.com/document_detail/28839.html: java.net.URLEncoder-style encoding with + -> %20, * -> %2A,
    %7E -> ~; sort; name=value joined by &; GET&%2F&encode(canonical); HMAC-SHA1 with secret + '&'; Base64."""
    def encode(text: str) -> str:
        return urllib.parse.quote_plus(text, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")

    canonical = "&".join(f"{encode(k)}={encode(query[k])}" for k in sorted(query) if k != "Signature")
    string_to_sign = "GET&%2F&" + encode(canonical)
    return base64.b64encode(hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()


@dataclass
class FakeEcs:
    ready_after_describes: int = 1
    quota: int = 100
    throttle_next: int = 0
    snapshots: dict[str, dict] = field(default_factory=dict)
    calls: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _minutes: itertools.count = field(default_factory=lambda: itertools.count(0))

    def add(self, disk_id: str, name: str, *, status: str = "accomplished") -> str:
        snapshot_id = f"s-bp1fake{next(self._ids):05d}"
        minute = next(self._minutes)
        self.snapshots[snapshot_id] = {
            "SnapshotId": snapshot_id, "SnapshotName": name, "SourceDiskId": disk_id, "SourceDiskType": "data",
            "Status": status, "Progress": "100%" if status == "accomplished" else "30%",
            "CreationTime": f"2024-01-{1 + minute // 1440:02d}T{minute // 60 % 24:02d}:{minute % 60:02d}:00Z",
            "_pending": 0}
        return snapshot_id

    def handle(self, query: dict[str, str]) -> tuple[int, dict]:
        with self.lock:
            self.calls.append(query)
            request = {"RequestId": "C0FFEE00-0000-4000-8000-000000000001", "HostId": "ecs.aliyuncs.com"}
            if query.get("AccessKeyId") != ACCESS_KEY_ID:
                return 404, {**request, "Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."}
            if query.get("Signature") != documented_signature(query, ACCESS_KEY_SECRET):
                return 400, {**request, "Code": "SignatureDoesNotMatch",
                             "Message": "Specified signature is not matched with our calculation."}
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return 400, {**request, "Code": "Throttling", "Message": "Request was denied due to request throttling."}
            action = query.get("Action")
            if action == "CreateSnapshot":
                if len(self.snapshots) >= self.quota:
                    return 403, {**request, "Code": "QuotaExceed.Snapshot",
                                 "Message": "The snapshot quota of this disk is exceeded."}
                snapshot_id = self.add(query["DiskId"], query["SnapshotName"], status="progressing")
                self.snapshots[snapshot_id].update(_pending=self.ready_after_describes,
                                                   Description=query.get("Description", ""))
                return 200, {**request, "SnapshotId": snapshot_id}
            if action == "DescribeSnapshots":
                items = [s for s in self.snapshots.values() if query.get("DiskId", s["SourceDiskId"]) == s["SourceDiskId"]]
                for item in items:
                    if item["Status"] == "progressing":
                        if item["_pending"] <= 0:
                            item.update(Status="accomplished", Progress="100%")
                        item["_pending"] -= 1
                number, size = int(query.get("PageNumber", 1)), int(query.get("PageSize", 10))
                shown = [{k: v for k, v in s.items() if not k.startswith("_")} for s in items[(number - 1) * size:number * size]]
                return 200, {**request, "TotalCount": len(items), "PageNumber": number, "PageSize": size,
                             "Snapshots": {"Snapshot": shown}}
            if action == "DeleteSnapshot":
                if query.get("SnapshotId") not in self.snapshots:
                    return 404, {**request, "Code": "InvalidSnapshotId.NotFound",
                                 "Message": "The specified SnapshotId does not exist."}
                del self.snapshots[query["SnapshotId"]]
                return 200, request
            return 400, {**request, "Code": "InvalidAction.NotFound", "Message": "Specified api is not found."}


class FakeEcsServer:
    def __init__(self, fake: FakeEcs) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query, keep_blank_values=True))
                status, answer = fake.handle(query)
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
