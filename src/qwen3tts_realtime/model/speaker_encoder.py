"""The ECAPA-TDNN speaker encoder of the Base checkpoints: log-mel frames → one speaker vector (spec §5).

The vector has the talker's hidden width (`enc_dim`) and goes into the prompt as a raw row, unprojected.
Module names follow the checkpoint (`speaker_encoder.*` keys with the prefix stripped), so the official
weights load unchanged.

    blocks.0            TDNN: conv(mel_dim → C, k5) + ReLU
    blocks.1..3         SE-Res2Net: tdnn1 (k1) → res2net_block (7 dilated k3 convs on 8 channel groups)
                        → tdnn2 (k1) → se_block (squeeze-excitation), plus the input (residual)
    mfa                 TDNN (k1) on the concatenated outputs of blocks 1..3
    asp                 attentive statistics pooling: attention over time → weighted mean and std
    fc                  conv(2 · C_mfa → enc_dim, k1)

Every convolution pads "same" with reflection, as the official one does; the input must therefore hold more
frames than the widest half-kernel (5 frames, 1280 samples at 24 kHz, for the published config).

What this module does not do: resample or validate reference audio (see `audio_input`), load checkpoints.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import AudioInputError, CheckpointError
from .config import SpeakerEncoderConfig
from .mel import SPEAKER_MEL_HOP, SPEAKER_MEL_SAMPLE_RATE, speaker_mel

__all__ = ["SpeakerEncoder"]

_STD_EPS = 1e-12  # variance floor of the statistics pooling


def _conv(in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> nn.Conv1d:
    return nn.Conv1d(
        in_channels, out_channels, kernel_size, dilation=dilation, padding="same", padding_mode="reflect"
    )


class TimeDelayNetBlock(nn.Module):
    """Conv1d + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.conv = _conv(in_channels, out_channels, kernel_size, dilation)

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T] -> [B, C', T]
        return torch.relu(self.conv(x))


class Res2NetBlock(nn.Module):
    """Channels split into `scale` groups; group 0 passes, group i ≥ 1 goes through conv i−1 after adding the
    previous group's output (i ≥ 2), which widens the receptive field group by group."""

    def __init__(self, channels: int, scale: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.scale = scale
        width = channels // scale
        self.blocks = nn.ModuleList(
            TimeDelayNetBlock(width, width, kernel_size, dilation) for _ in range(scale - 1)
        )

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T]
        groups = torch.chunk(x, self.scale, dim=1)
        outputs = [groups[0]]
        previous = self.blocks[0](groups[1])
        outputs.append(previous)
        for block, group in zip(self.blocks[1:], groups[2:], strict=True):
            previous = block(group + previous)
            outputs.append(previous)
        return torch.cat(outputs, dim=1)


class SqueezeExcitationBlock(nn.Module):
    """Channel gates from the time-averaged features: mean → conv1 → ReLU → conv2 → sigmoid → scale."""

    def __init__(self, channels: int, se_channels: int) -> None:
        super().__init__()
        self.conv1 = _conv(channels, se_channels)
        self.conv2 = _conv(se_channels, channels)

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T]
        gates = x.mean(dim=2, keepdim=True)  # [B, C, 1]
        gates = torch.sigmoid(self.conv2(torch.relu(self.conv1(gates))))
        return x * gates


class SqueezeExcitationRes2NetBlock(nn.Module):
    """TDNN (k1) → Res2Net → TDNN (k1) → squeeze-excitation, plus a residual connection."""

    def __init__(
        self, channels: int, res2net_scale: int, se_channels: int, kernel_size: int, dilation: int
    ) -> None:
        super().__init__()
        self.tdnn1 = TimeDelayNetBlock(channels, channels, 1, 1)
        self.res2net_block = Res2NetBlock(channels, res2net_scale, kernel_size, dilation)
        self.tdnn2 = TimeDelayNetBlock(channels, channels, 1, 1)
        self.se_block = SqueezeExcitationBlock(channels, se_channels)

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T]
        return self.se_block(self.tdnn2(self.res2net_block(self.tdnn1(x)))) + x


def _weighted_stats(x: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and std over time of `x` [B, C, T] under `weights` summing to 1 over T; each [B, C]."""
    mean = (weights * x).sum(dim=2)
    variance = (weights * (x - mean.unsqueeze(2)).pow(2)).sum(dim=2)
    return mean, torch.sqrt(variance.clamp(min=_STD_EPS))


class AttentiveStatisticsPooling(nn.Module):
    """Attention weights over time from [x, global mean, global std], then the attended mean and std."""

    def __init__(self, channels: int, attention_channels: int) -> None:
        super().__init__()
        self.tdnn = TimeDelayNetBlock(channels * 3, attention_channels, 1, 1)
        self.conv = _conv(attention_channels, channels)

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T] -> [B, 2C, 1]
        num_frames = x.shape[2]
        uniform = torch.full((1, 1, num_frames), 1.0 / num_frames, dtype=x.dtype, device=x.device)
        mean, std = _weighted_stats(x, uniform)
        context = torch.cat(
            [x, mean.unsqueeze(2).expand(-1, -1, num_frames), std.unsqueeze(2).expand(-1, -1, num_frames)],
            dim=1,
        )  # [B, 3C, T]
        attention = torch.softmax(self.conv(torch.tanh(self.tdnn(context))), dim=2)  # [B, C, T]
        mean, std = _weighted_stats(x, attention)
        return torch.cat([mean, std], dim=1).unsqueeze(2)


class SpeakerEncoder(nn.Module):
    """ECAPA-TDNN: `[B, frames, mel_dim]` log-mel → `[B, enc_dim]` speaker vectors.

    Args:
        config: `speaker_encoder_config` of a Base checkpoint's `config.json`.
    """

    def __init__(self, config: SpeakerEncoderConfig) -> None:
        super().__init__()
        channels, kernels, dilations = config.enc_channels, config.enc_kernel_sizes, config.enc_dilations
        if not len(channels) == len(kernels) == len(dilations) >= 3:
            raise CheckpointError(
                f"config.json speaker_encoder_config: enc_channels {channels}, enc_kernel_sizes {kernels} "
                f"and enc_dilations {dilations} must have the same length (at least 3)"
            )
        self.config = config
        self.blocks = nn.ModuleList(
            [TimeDelayNetBlock(config.mel_dim, channels[0], kernels[0], dilations[0])]
        )
        for i in range(1, len(channels) - 1):
            if channels[i] != channels[i - 1]:
                raise CheckpointError(
                    f"config.json speaker_encoder_config: SE-Res2Net block {i} maps {channels[i - 1]} → "
                    f"{channels[i]} channels; its residual connection needs equal widths"
                )
            self.blocks.append(
                SqueezeExcitationRes2NetBlock(
                    channels[i], config.enc_res2net_scale, config.enc_se_channels, kernels[i], dilations[i]
                )
            )
        self.mfa = TimeDelayNetBlock(channels[-1], channels[-1], kernels[-1], dilations[-1])
        self.asp = AttentiveStatisticsPooling(channels[-1], config.enc_attention_channels)
        self.fc = _conv(channels[-1] * 2, config.enc_dim)
        # Reflect padding needs more frames than the widest half-kernel of any convolution.
        self.min_num_frames = 1 + max(((k - 1) * d + 1) // 2 for k, d in zip(kernels, dilations, strict=True))

    def forward(self, mels: Tensor) -> Tensor:
        """`mels` [B, frames, mel_dim] (frames ≥ `min_num_frames`) → speaker vectors [B, enc_dim]."""
        x = mels.transpose(1, 2)  # [B, mel_dim, frames]
        x = self.blocks[0](x)
        block_outputs = []
        for block in self.blocks[1:]:
            x = block(x)
            block_outputs.append(x)
        x = self.mfa(torch.cat(block_outputs, dim=1))
        return self.fc(self.asp(x)).squeeze(2)

    @torch.no_grad()
    def embed(self, wav_24k: Tensor) -> Tensor:
        """One speaker vector from a 24 kHz mono waveform, as the official `extract_speaker_embedding`.

        The mel front end runs in float32 (as in the official code, whatever the model dtype), on the
        encoder's device; the mels are then cast to the encoder's dtype.

        Args:
            wav_24k: `[T]` float waveform at 24 kHz (resample other rates first, see `audio_input`).

        Returns:
            `[enc_dim]` speaker vector in the encoder's dtype, on its device.

        Raises:
            AudioInputError: the waveform is not 1-D or is shorter than `min_num_frames` hops
                (1280 samples, 53 ms, for the published config).
        """
        if wav_24k.ndim != 1:
            raise AudioInputError(
                f"speaker embedding needs a mono waveform of shape [T], got shape {tuple(wav_24k.shape)}"
            )
        min_samples = self.min_num_frames * SPEAKER_MEL_HOP
        if wav_24k.shape[0] < min_samples:
            min_ms = min_samples / SPEAKER_MEL_SAMPLE_RATE * 1000
            raise AudioInputError(
                f"reference audio of {wav_24k.shape[0]} samples is too short for the speaker encoder: it "
                f"needs at least {min_samples} samples ({min_ms:.0f} ms at 24 kHz); use a longer reference "
                "clip (3-10 s is typical)"
            )
        param = next(self.parameters())
        mels = speaker_mel(wav_24k.to(device=param.device, dtype=torch.float32).unsqueeze(0))
        return self(mels.to(param.dtype))[0]
