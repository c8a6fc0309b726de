"""The autoencoder of a run: :class:`ModelConfig` (a preset or a spec, and what is added to it)."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, model_validator

from aelab.config.base import Activation, Strict
from aelab.config.presets import PRESET_NAMES, PRESETS
from aelab.config.specs import ModelSpec
from aelab.config.variants import QuantizerConfig, SparsityConfig, VariationalConfig

SETTINGS_CLASSES: dict[str, type[Strict]] = {"variational": VariationalConfig, "quantizer": QuantizerConfig}
"""The settings fields that are config classes of their own (the families before ``family``/``settings``)."""


def _merge_preset(value: dict) -> dict:
    """A model mapping naming a preset, with the preset's settings under the fields it gives (key by key), so a
    stored config is complete."""
    fills = PRESETS[value["preset"]].model
    value = dict(value)
    for key, base in fills.items():
        given = value.get(key)
        if isinstance(given, BaseModel):
            given = given.model_dump(exclude_unset=True)
        if isinstance(given, dict) and isinstance(base, dict):
            value[key] = {**base, **given}
    return value


class ModelConfig(Strict):
    """A preset by name, or a spec (exactly one of the two), and what is added to it."""

    preset: Optional[str] = None
    """A preset name (see 'aelab models')."""
    spec: Optional[ModelSpec] = None
    """Your own architecture: {type: mlp, ...}, {type: conv, ...} or {type: res, ...}."""
    name: Optional[str] = None
    """Display name in tables and figures; defaults to the preset name or the spec type."""
    sparsity: Optional[SparsityConfig] = None
    """Code sparsity: topk:K, lifetime:K or lifetime:FRACTION, l1:WEIGHT, kl:RHO:WEIGHT."""
    tied: bool = False
    """Tie each decoder Linear to the transpose of its mirror encoder Linear (symmetric MLPs only)."""
    code_activation: Optional[Activation] = None
    """Overrides the code activation of the preset or spec (e.g. sigmoid for KL sparsity)."""
    variational: Optional[VariationalConfig] = None
    """A variational autoencoder (VAE, beta-VAE, conditional VAE): {beta: 4, warmup_epochs: 10, ...}; on a
    generative preset, the fields given replace the preset's."""
    quantizer: Optional[QuantizerConfig] = None
    """A vector-quantized autoencoder (VQ-VAE) on a conv spec: {codebook_size: 256, commitment: 0.25, ...}; on a
    generative preset, the fields given replace the preset's."""
    family: Optional[str] = None
    """A model family by name (see 'aelab models': e.g. wae, the Wasserstein autoencoder); None = the
    autoencoder, or the VAE / VQ-VAE that ``variational`` / ``quantizer`` make."""
    settings: Optional[dict[str, Any]] = None
    """The family's settings, checked by the family (each names its keys and allowed values); on a preset, the
    keys given replace the preset's."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"preset": value}
        if isinstance(value, dict) and value.get("preset") is not None and value.get("spec") is not None:
            name = value["preset"]
            kind = PRESETS[name].spec.type if name in PRESETS else "res"
            raise ValueError(
                f"give exactly one of 'preset' or 'spec', got both: preset {name!r} has a fixed architecture; to "
                f"change it, give a whole spec with its type and no preset ('aelab models {name}' prints it written "
                f"out; YAML: model: {{spec: {{type: {kind}, ...}}}}; flags: --set model.preset=null --set "
                f"'model.spec={{type: {kind}, ...}}')"
            )
        if isinstance(value, dict) and value.get("preset") in PRESETS:
            return _merge_preset(value)
        return value

    @model_validator(mode="after")
    def _one_of(self) -> ModelConfig:
        if (self.preset is None) == (self.spec is None):
            raise ValueError("give exactly one of 'preset' or 'spec'")
        if self.preset is not None and self.preset not in PRESET_NAMES:
            raise ValueError(f"preset: got {self.preset!r}; allowed: {', '.join(PRESET_NAMES)}")
        families = [k for k in ("variational", "quantizer", "family") if getattr(self, k) is not None]
        if len(families) > 1:
            raise ValueError(
                f"give at most one of 'variational' (VAE), 'quantizer' (VQ-VAE) or 'family'; got "
                f"{' and '.join(families)}"
            )
        families += [k for k in ("variational", "quantizer", "family") if k in self.preset_fills and k not in families]
        if families and (self.sparsity or self.tied):
            raise ValueError(
                f"sparsity and tied weights are for deterministic autoencoders; allowed with {families[0]}: neither"
            )
        if self.settings is not None and self.family is None and "family" not in self.preset_fills:
            raise ValueError("settings: they belong to a model family; give 'family' too (see 'aelab models')")
        return self

    @property
    def preset_fills(self) -> dict[str, Any]:
        """The model-config fields the preset fills (:attr:`aelab.config.presets.Preset.model`); {} for a spec."""
        return PRESETS[self.preset].model if self.preset is not None else {}

    def filled(self) -> ModelConfig:
        """This config with the preset's fields in place of those it leaves unset (what the model is built from)."""
        update = {k: v for k, v in self.preset_fills.items() if getattr(self, k) is None}
        for key, cls in SETTINGS_CLASSES.items():
            if isinstance(update.get(key), dict):
                update[key] = cls(**update[key])
        return self.model_copy(update=update) if update else self

    @property
    def label(self) -> str:
        """``name``, or the preset/spec type followed by what was added to it (e.g. ``fc-64 topk:16 tied``)."""
        if self.name:
            return self.name
        parts = [self.preset or self.spec.type]  # type: ignore[union-attr]
        if self.code_activation:
            parts.append(f"code:{self.code_activation}")
        if self.sparsity is not None:
            sp = self.sparsity
            arg = {
                "topk": sp.k,
                "lifetime": sp.k if sp.k is not None else sp.fraction,
                "l1": sp.weight,
                "kl": f"{sp.rho}:{sp.weight}",
            }[sp.kind]
            parts.append(f"{sp.kind}:{arg}")
        if self.tied:
            parts.append("tied")
        kinds, settings = self._settings_label()
        return " ".join(str(p) for p in parts[:1] + kinds + parts[1:] + settings)

    def _settings_label(self) -> tuple[list[str], list[str]]:
        """(the family when it is not the preset's, the settings that differ from the preset's or the defaults)."""
        fills, kinds, parts = self.preset_fills, [], []
        for key, kind in (("variational", "vae"), ("quantizer", "vq")):
            given = getattr(self, key)
            if given is not None:
                kinds += [] if key in fills else [kind]
                base = SETTINGS_CLASSES[key](**fills.get(key, {})).model_dump()
                values = given.model_dump(exclude={"prior"})
                parts += [f"{k}:{_short(v)}" for k, v in values.items() if base.get(k) != v]
                kinds += ["pixelcnn"] if getattr(given, "prior", None) is not None else []
        if self.family is not None and fills.get("family") != self.family:
            kinds.append(self.family)
        base = fills.get("settings", {}) if fills.get("family") == (self.family or fills.get("family")) else {}
        parts += [f"{k}:{_short(v)}" for k, v in (self.settings or {}).items() if base.get(k) != v]
        return kinds, parts


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
