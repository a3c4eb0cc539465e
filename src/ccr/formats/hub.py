"""``ccr push``: upload a Hub export (``ccr export --format hf``) as a dataset repo.

An export can be many GB, so the upload must survive an interruption: ``upload_large_folder``
(huggingface_hub 0.25 to 1.x) commits in batches and resumes where it stopped; huggingface_hub 2
dropped it because ``upload_folder`` itself now does that, so whichever the installed version has
is used. Offline (``HF_HUB_OFFLINE``) or with the Hub out of reach the push fails at once with one
line, never after network time-outs: the offline setting is read first, then one TCP connection to
the endpoint (or the proxy that reaches it) is tried with a short time-out.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from ccr.errors import CcrError
from ccr.formats.export_hf import MANIFEST_COPY, is_export

PROBE_SECONDS = 5.0
_REPO = re.compile(r"[\w.-]+/[\w.-]+")
_TRUE = {"1", "ON", "YES", "TRUE"}  # huggingface_hub's spelling of a set flag


def push(folder: Path | str, repo: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload ``folder`` to the dataset repo ``repo`` (made if missing); returns the repo's address."""
    folder = _export_folder(Path(folder))
    _check_repo(repo)
    endpoint = _reachable_endpoint()
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        upload_large = getattr(api, "upload_large_folder", None)
        if upload_large is not None:
            upload_large(repo_id=repo, folder_path=folder, repo_type="dataset", private=private)
        else:
            api.upload_folder(repo_id=repo, folder_path=folder, repo_type="dataset", commit_message="ccr push")
    except Exception as e:  # noqa: BLE001  the hub's HTTP errors and its HTTP client's transport errors,
        # whose classes change across huggingface_hub versions (requests, httpx): each is one line here
        raise CcrError(_refused(repo, e)) from None
    return f"{endpoint.rstrip('/')}/datasets/{repo}"


def _check_repo(repo: str) -> None:
    """A repo id the Hub accepts (``--`` and ``..``, edge dots or dashes and over-long names it refuses)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    fix = f"--repo {repo!r} is not a valid OWNER/NAME; name the dataset repo with its owner, e.g. --repo alice/multi30k-ccr"
    if not _REPO.fullmatch(repo):
        raise CcrError(fix)
    try:
        validate_repo_id(repo)
    except HFValidationError as e:
        raise CcrError(f"{fix} ({e})") from None


def _export_folder(folder: Path) -> Path:
    """``folder`` if ``ccr export --format hf`` wrote it, else one line saying how to make one."""
    make = f"write one with: ccr export CORPUS --out {folder} --format hf"
    if not folder.exists():
        raise CcrError(f"no export at {folder}; {make}")
    if not folder.is_dir():
        raise CcrError(f"{folder} is a file, not an export directory; {make}")
    if (folder / "manifest.json").is_file():
        raise CcrError(f"{folder} is a corpus, not a Hub export; export it first "
                       f"(ccr export {folder} --out DIR --format hf) and push DIR")
    if not is_export(folder):
        raise CcrError(f"{folder} is not a Hub export (no README.md and {MANIFEST_COPY}); {make}")
    return folder


def _reachable_endpoint() -> str:
    """The Hub's address, once offline mode is known to be off and one connection to it succeeded."""
    from huggingface_hub import constants

    # the flag is read when huggingface_hub is imported; the environment also has a later setting
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE:
        raise CcrError("the Hugging Face Hub cannot be reached: HF_HUB_OFFLINE is set; unset it and push "
                       "from a machine with network access")
    endpoint = constants.ENDPOINT
    try:
        socket.create_connection(_first_hop(endpoint), timeout=PROBE_SECONDS).close()
    except OSError as e:
        raise CcrError(f"the Hugging Face Hub cannot be reached at {endpoint} ({e.strerror or e}); push from a "
                       "machine with network access, or set HF_ENDPOINT to a mirror you can reach") from None
    return endpoint


def _first_hop(endpoint: str) -> tuple[str, int]:
    """Where a connection to ``endpoint`` goes first: the proxy for its scheme, unless the host bypasses it."""
    url = urlsplit(endpoint)
    proxy = getproxies().get(url.scheme)
    if proxy and not proxy_bypass(url.hostname or ""):
        url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def _refused(repo: str, error: Exception) -> str:
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status == 401:
        return f"the Hub refused the token for {repo} (401); log in with `hf auth login` or pass --token"
    if status == 403:
        return f"the token may not write to {repo} (403); use a write token of its owner, or another --repo"
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"the Hub refused the upload to {repo}: {first}; check --repo and --token, then run ccr push again"
