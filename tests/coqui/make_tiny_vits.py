"""Writes a tiny, randomly initialised Coqui VITS model (checkpoint + config.json) for tests.

Runs in Coqui's own venv (`.venv-coqui`): `python make_tiny_vits.py OUT_DIR`. The voice is noise,
but the real `tts-server` loads it and answers `/api/tts` exactly as it does for a trained model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from TTS.tts.configs.shared_configs import CharactersConfig
from TTS.tts.configs.vits_config import VitsConfig
from TTS.tts.models.vits import Vits, VitsArgs


def main(out_dir: Path) -> None:
    """Saves model.pth and config.json into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = VitsConfig(
        model_args=VitsArgs(
            init_discriminator=False,
            hidden_channels=32,
            num_layers_posterior_encoder=4,
            num_layers_flow=2,
            hidden_channels_ffn_text_encoder=64,
            num_layers_text_encoder=2,
            num_heads_text_encoder=2,
            resblock_kernel_sizes_decoder=[3],
            resblock_dilation_sizes_decoder=[[1, 3, 5]],
            upsample_rates_decoder=[8, 8, 4],
            upsample_initial_channel_decoder=64,
            upsample_kernel_sizes_decoder=[16, 16, 8],
        ),
        use_phonemes=False,
        text_cleaner="basic_cleaners",
        characters=CharactersConfig(
            characters_class="TTS.tts.models.vits.VitsCharacters",
            pad="_",
            eos="",
            bos="",
            blank=None,
            characters="abcdefghijklmnopqrstuvwxyz",
            punctuations=" !',.?-",
        ),
    )
    config.audio.sample_rate = 22050
    model = Vits.init_from_config(config)
    torch.save({"model": model.state_dict()}, out_dir / "model.pth")
    config.save_json(str(out_dir / "config.json"))
    print(out_dir)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
