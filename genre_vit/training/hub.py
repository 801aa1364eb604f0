"""Publishing a model folder on the Hugging Face Hub."""

from pathlib import Path

from ..model_folder import CHECKPOINTS_FOLDER


def push_folder(folder: Path, repo_id: str | None) -> str:
    """Upload a model folder (not its Trainer checkpoints or window cache) to the Hub."""
    from huggingface_hub import HfApi

    if not repo_id:
        raise ValueError("--push-to-hub needs --hub-model-id (e.g. your-name/genre-vit-gtzan).")
    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id, folder_path=str(folder), ignore_patterns=[f"{CHECKPOINTS_FOLDER}/*", "windows-cache/*"]
    )
    return f"https://huggingface.co/{repo_id}"


__all__ = ["push_folder"]
