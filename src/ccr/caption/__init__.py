"""MLLM descriptions of images and videos (LLaVA family), their prompts, and LECCR's semantic slots."""
