"""A fake UCloud API on 127.0.0.1: checks each request's signature as UCloud documents it, keeps images and
UDisk snapshots in memory, answers the JSON the API reference shows, and fails on demand (quota)."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

PUBLIC_KEY = "ucloudsomeone@example.com1296235120854146120"
PRIVATE_KEY = "46f09bb9fab4f12dfc160dae12273d5332b5debe"


def documented_signature(fields: dict[str, str], private_key: str) -> str:
    """docs.ucloud.cn/api/summary/signature, written here independently of ncbackup.ucloud: sort the keys,
    concatenate key and value, append the private key, SHA-1, lower-case hex."""
    text = "".join(f"{key}{fields[key]}" for key in sorted(fields) if key != "Signature") + private_key
    return hashlib.sha1(text.encode("utf-8")).hexdigest()  # noqa: S324 - the provider's scheme


@dataclass
class FakeUCloud:
    ready_after_describes: int = 1           # a new image/snapshot is Making/Creating for this many describes
    quota: int = 100                         # creating past this many images/snapshots fails
    fail_forever: bool = False               # new ones end Unavailable/Failed
    images: dict[str, dict] = field(default_factory=dict)
    snapshots: dict[str, dict] = field(default_factory=dict)
    calls: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _clock: itertools.count = field(default_factory=lambda: itertools.count(1_700_000_000))

    def add_image(self, name: str, *, state: str = "Available") -> str:
        image_id = f"uimage-{next(self._ids):05d}"
        self.images[image_id] = {"ImageId": image_id, "ImageName": name, "ImageType": "Custom", "State": state,
                                 "CreateTime": next(self._clock), "Zone": "cn-bj2-04", "OsType": "Linux",
                                 "_pending": 0}
        return image_id

    def add_snapshot(self, udisk_id: str, name: str, *, status: str = "Normal") -> str:
        snapshot_id = f"bsSnap-{next(self._ids):05d}"
        self.snapshots[snapshot_id] = {"SnapshotId": snapshot_id, "Name": name, "UDiskId": udisk_id, "UDiskName": "data",
                                       "CreateTime": next(self._clock), "Size": 20, "Status": status, "DiskType": 0,
                                       "_pending": 0}
        return snapshot_id

    def handle(self, fields: dict[str, str]) -> dict:
        with self.lock:
            self.calls.append(fields)
            action = fields.get("Action", "")
            if fields.get("PublicKey") != PUBLIC_KEY:
                return {"RetCode": 172, "Message": "User Not Exists", "Action": f"{action}Response"}
            if fields.get("Signature") != documented_signature(fields, PRIVATE_KEY):
                return {"RetCode": 171, "Message": "Signature VerifyAC Error", "Action": f"{action}Response"}
            if "Region" not in fields:
                return {"RetCode": 160, "Message": "Missing Region", "Action": f"{action}Response"}
            answer = getattr(self, f"_{action}", None)
            if answer is None:
                return {"RetCode": 161, "Message": f"Action [{action}] not found", "Action": f"{action}Response"}
            return {"Action": f"{action}Response", "RetCode": 0, **answer(fields)}

    def _quota_error(self) -> dict | None:
        if len(self.images) + len(self.snapshots) >= self.quota:
            return {"RetCode": 8039, "Message": "Quota exceeded: too many snapshots in this region"}
        return None

    def _CreateCustomImage(self, fields):  # noqa: N802 - UCloud's action names
        if error := self._quota_error():
            return error
        image_id = self.add_image(fields["ImageName"], state="Making")
        self.images[image_id].update(_pending=self.ready_after_describes, UHostId=fields["UHostId"],
                                     ImageDescription=fields.get("ImageDescription", ""))
        return {"ImageId": image_id}

    def _advance(self, item: dict, key: str, ready: str, failed: str) -> None:
        if item[key] in ("Making", "Creating"):
            if self.fail_forever:
                item[key] = failed
            elif item["_pending"] <= 0:
                item[key] = ready
            item["_pending"] -= 1

    def _DescribeImage(self, fields):  # noqa: N802
        items = [image for image in self.images.values()
                 if fields.get("ImageId") in (None, image["ImageId"]) and fields.get("ImageType") in (None, "Custom")]
        for image in items:
            self._advance(image, "State", "Available", "Unavailable")
        offset, limit = int(fields.get("Offset", 0)), int(fields.get("Limit", 20))
        shown = [{k: v for k, v in image.items() if not k.startswith("_")} for image in items[offset:offset + limit]]
        return {"TotalCount": len(items), "ImageSet": shown}

    def _TerminateCustomImage(self, fields):  # noqa: N802
        if fields["ImageId"] not in self.images:
            return {"RetCode": 8043, "Message": "Image not found"}
        del self.images[fields["ImageId"]]
        return {"ImageId": fields["ImageId"]}

    def _CreateUDiskSnapshot(self, fields):  # noqa: N802
        if "Zone" not in fields or "Name" not in fields:
            return {"RetCode": 160, "Message": "Missing Zone or Name"}
        if error := self._quota_error():
            return error
        snapshot_id = self.add_snapshot(fields["UDiskId"], fields["Name"], status="Creating")
        self.snapshots[snapshot_id].update(_pending=self.ready_after_describes, Comment=fields.get("Comment", ""))
        return {"SnapshotId": [snapshot_id]}

    def _DescribeUDiskSnapshot(self, fields):  # noqa: N802
        items = [snapshot for snapshot in self.snapshots.values()
                 if fields.get("SnapshotId", snapshot["SnapshotId"]) == snapshot["SnapshotId"]
                 and fields.get("UDiskId", snapshot["UDiskId"]) == snapshot["UDiskId"]]
        for snapshot in items:
            self._advance(snapshot, "Status", "Normal", "Failed")
        offset, limit = int(fields.get("Offset", 0)), int(fields.get("Limit", 20))
        shown = [{k: v for k, v in item.items() if not k.startswith("_")} for item in items[offset:offset + limit]]
        return {"TotalCount": len(items), "DataSet": shown}

    def _DeleteUDiskSnapshot(self, fields):  # noqa: N802
        if "UDiskId" in fields:
            for snapshot_id in [k for k, v in self.snapshots.items() if v["UDiskId"] == fields["UDiskId"]]:
                del self.snapshots[snapshot_id]
            return {}
        if fields.get("SnapshotId") not in self.snapshots:
            return {"RetCode": 17060, "Message": "snapshot not found"}
        del self.snapshots[fields["SnapshotId"]]
        return {}


class FakeUCloudServer:
    def __init__(self, fake: FakeUCloud) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fields = dict(parse_qsl(self.rfile.read(length).decode("utf-8"), keep_blank_values=True))
                body = json.dumps(fake.handle(fields)).encode()
                self.send_response(200)
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
