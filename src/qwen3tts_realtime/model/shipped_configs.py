"""The names of the real model configs shipped as package data (`configs/<name>/config.json`). No torch import:
the command line lists them in its help."""

__all__ = ["CONFIG_NAMES"]

CONFIG_NAMES = ("0.6B-Base", "0.6B-CustomVoice", "1.7B-Base", "1.7B-CustomVoice", "1.7B-VoiceDesign")
