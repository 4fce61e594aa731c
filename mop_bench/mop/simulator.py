"""`MoPSimulator`: every MoP configuration (and its baselines) behind the Simulator protocol.

prepare(): personas -> mixture slots -> features -> gate/temperature fit -> artifacts,
reusing saved artifacts whose settings match, or loading another run's fit
(`gates_from`, the paper's transfer experiment). simulate(): one `lm.generate` per chunk.
The LM is built only when something needs it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mop_bench.mop import artifacts as art
from mop_bench.mop.mixture import Mixture, check_uids, make_slots
from mop_bench.mop.personas import Persona, PersonaSettings, build_personas, cluster_label
from mop_bench.mop.prompts import CardPrompt
from mop_bench.simulators import SimulationInputs
from mop_bench.spec import simulator_identity
from mop_bench.types import Context, Example, Generation

log = logging.getLogger(__name__)

#: Bumped whenever the fit's arithmetic changes (2: bounded gates, sampled candidates;
#: 3: prompts from PromptSpec, exemplar sets, scored texts cut at the stop).
FIT_VERSION = 3


class MoPSimulator:
    def __init__(
        self,
        inputs: SimulationInputs,
        *,
        persona_settings: PersonaSettings | None = None,
    ) -> None:
        self.inputs = inputs
        self.spec = inputs.spec.simulator
        self.prompt = inputs.spec.prompt
        card = inputs.task.card
        self.card_prompt = CardPrompt(
            card.request_template, getattr(card, "completion_header", None)
        )
        self.persona_settings = persona_settings or PersonaSettings()
        self.artifacts_dir = Path(inputs.artifacts_dir)
        self._lm: Any = None
        self._fitted: Any = None
        self._model: Any = None
        self._record: dict[str, Any] | None = None
        self._picle_record: dict[str, Any] | None = None

    @property
    def lm(self) -> Any:
        if self._lm is None:
            self._lm = self.inputs.lm_factory()
        return self._lm

    # ------------------------------------------------------------------ settings
    def _pool(self) -> list[Example]:
        pool = list(self.inputs.task.pool)
        if not pool:
            raise ValueError(f"task {self.inputs.task.card.name!r} has an empty training pool")
        check_uids(pool)
        return pool

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.inputs.encoder.encode(texts), dtype=np.float32)

    def _encoder_identity(self) -> str:
        enc = self.inputs.encoder
        return str(getattr(enc, "identity", type(enc).__name__))

    def _learned(self) -> bool:
        return self.spec.gating == "learned"

    def settings(self, pool: Sequence[Example]) -> dict[str, Any]:
        """Everything the fit depends on (compared to reuse saved artifacts)."""
        run = self.inputs.spec
        sim = simulator_identity(dataclasses.asdict(self.spec))
        for key in ("name", "description"):
            sim.pop(key)
        pool_digest = art.digest([[ex.uid, ex.context, ex.text] for ex in pool])
        return art.normalise(
            {
                "version": FIT_VERSION,
                "task": self.inputs.task.card.name,
                "card_prompt": dataclasses.asdict(self.card_prompt),
                "pool": pool_digest,
                "simulator": sim,
                "fit": dataclasses.asdict(run.fit),
                "budget_temperature": run.budget.temperature,
                "lm": dataclasses.asdict(run.lm),
                "encoder": self._encoder_identity(),
                "seed": run.seed,
                "prompt": self.prompt.to_json(),
                "persona_settings": self.persona_settings.to_json(),
            }
        )

    def _persona_settings_key(self, settings: dict[str, Any]) -> dict[str, Any]:
        fit = settings["fit"]
        key = {k: settings[k] for k in ("task", "pool", "encoder", "seed", "persona_settings")}
        key |= {"source": self.spec.personas, "k": self.spec.n_personas, "version": 2}
        key["fit"] = {k: v for k, v in fit.items() if k.startswith("persona_")}
        if self.spec.personas == "synthesized":
            key["lm"] = settings["lm"]
        return key

    # ------------------------------------------------------------------ prepare
    def prepare(self) -> dict[str, Any]:
        if self._record is not None:
            return self._record
        pool = self._pool()
        settings = self.settings(pool)
        if self.inputs.gates_from is not None:
            self._record = self._load_from(self.inputs.gates_from, pool, settings)
        else:
            self._record = self._reuse(pool, settings) or self._fit(pool, settings)
        return self._record

    def _mixture(self, personas: list[Persona], pool: list[Example]) -> Mixture:
        run = self.inputs.spec
        if self.spec.exemplars == "fixed" and self.spec.exemplar_selection == "picle":
            from mop_bench.mop.picle import run_selection

            slots, self._picle_record = run_selection(
                run, pool, self.prompt, lambda: self.lm, self.artifacts_dir
            )
        else:
            slots = make_slots(
                self.spec.exemplars,
                pool,
                self.spec.exemplars_per_prompt,
                run.seed,
                tuple(self.spec.exemplar_match),
            )
        return Mixture(
            personas=[p.text for p in personas],
            exemplar_slots=slots,
            exemplar_mode=self.spec.exemplars,
            card=self.card_prompt,
            prompt=self.prompt,
            exemplar_match=tuple(self.spec.exemplar_match),
            persona_labels=[cluster_label(p, self.inputs.task.card) for p in personas],
            persona_match=self.spec.persona_label_match,
        )

    def _features(self, mixture: Mixture) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Encoder features of personas and gated exemplars; with uniform gates, zero
        placeholders of the right shape (the gates ignore them, the encoder is idle)."""
        if self._learned():
            return mixture.features(self._encode)
        g = np.zeros((len(mixture.personas), 1), np.float32) if mixture.personas else None
        e = np.zeros((mixture.n_exemplar_slots, 1), np.float32) if mixture.masked else None
        return g, e

    def _fit(self, pool: list[Example], settings: dict[str, Any]) -> dict[str, Any]:
        import torch

        from mop_bench.mop.fit import fit_mixture
        from mop_bench.mop.gates import MixtureGates
        from mop_bench.mop.scoring import ScoreCache, fit_grid, tau_range

        t0 = time.perf_counter()
        run = self.inputs.spec
        out = self.artifacts_dir
        personas, synth_cost = self._personas(pool, settings)
        mixture = self._mixture(personas, pool)
        g_feat, e_feat = self._features(mixture)
        n_train = min(run.fit.n_train, len(pool))
        picks = np.random.default_rng([run.seed, 3]).choice(len(pool), size=n_train, replace=False)
        train = [pool[i] for i in sorted(picks.tolist())]
        x_feat = self._encode([ex.context for ex in train]) if self._learned() else None
        enc_dim = next((f.shape[1] for f in (x_feat, g_feat, e_feat) if f is not None), 1)
        if x_feat is None:
            x_feat = np.zeros((len(train), enc_dim), dtype=np.float32)
        k = mixture.n_persona_slots
        grid = fit_grid(run.fit, self.spec.temperature, run.budget.temperature)
        gates = MixtureGates(
            enc_dim,
            run.fit.proj_dim,
            k,
            persona_gate=self._learned() and k > 1,
            exemplar_gate=self._learned() and self.spec.exemplars == "gated",
            temperature=self.spec.temperature,
            tau_range=tau_range(run.fit),
            fixed_temperature=run.budget.temperature,
            generator=torch.Generator().manual_seed(run.seed),
            scale_max=run.fit.gate_scale_max,
            tau_init=run.fit.tau_init,
            logits=run.fit.gate_logits,
        )
        cache_key = art.digest(
            {
                "lm": settings["lm"],
                "grid": grid,
                "max_tokens": run.fit.score_max_tokens,
                "prompt": settings["prompt"],
                "card_prompt": settings["card_prompt"],
                "personas": mixture.personas,
                "slots": [[ex.uid for ex in slot] for slot in mixture.exemplar_slots],
            }
        )
        cache_path = out / art.SCORE_CACHE_DIR / f"{cache_key}.jsonl"
        cache = ScoreCache(cache_path, len(grid))
        lm = self.lm if gates.trainable else None
        if lm is not None:
            from mop_bench.lm.doctor import require_scoring_ok

            require_scoring_ok(lm)  # a server whose echoed log-probs are wrong: refuse
        train_record = fit_mixture(
            mixture, gates, train, x_feat, g_feat, e_feat, lm, cache,
            fit=run.fit, grid=grid, seed=run.seed,
        )  # fmt: skip
        art.save_gates(out / art.GATES, gates.to_checkpoint())
        self._keep(mixture, gates, g_feat, e_feat)
        record = self._record_for(personas, mixture, gates, settings)
        compared = train_record.get("personas_trained")
        record |= {
            "reused": False,
            "train": train_record,
            "train_uids": [ex.uid for ex in train],
            "grid": list(grid),
            "persona_synthesis": synth_cost,
            "diagnostics": self._diagnostics(train, x_feat, compared),
            "wall_seconds": round(time.perf_counter() - t0, 3),
        }
        art.write_json(out / art.FIT, record)
        return record

    def _keep(self, mixture: Mixture, gates: Any, g_feat: Any, e_feat: Any) -> None:
        from mop_bench.mop.fitted import FittedModel

        self._model = FittedModel.build(mixture, gates, g_feat, e_feat)
        self._fitted = self._model.sampler

    def _diagnostics(
        self, rows: Sequence[Any], x_feat: np.ndarray | None, compared: list[int] | None
    ) -> dict[str, Any]:
        per_persona = self.spec.temperature == "per_persona" and self._model.mixture.personas
        return self._model.diagnostics(rows, x_feat, compared if per_persona else None)

    # ------------------------------------------------------------------ held out
    def heldout(
        self, examples: Sequence[Example], cache_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(`heldout_nll` of the fitted model on `examples` (see heldout.py) with the gate
        diagnostics over the same contexts, its cost)."""
        from mop_bench.mop.heldout import heldout_loglik

        self.prepare()
        run = self.inputs.spec
        x_feat = (
            self._encode([ex.context for ex in examples])
            if self._model.needs_context_features
            else None
        )
        key = art.digest(
            {
                "fit": self._record.get("settings") if self._record else None,
                "gates": art.gates_digest(self._model.gates.to_checkpoint()),
                "examples": [ex.uid for ex in examples],
                "m": run.metrics.heldout_samples,
                "block": run.metrics.heldout_block,
                "tokens": run.fit.score_max_tokens,
                "lm": dataclasses.asdict(run.lm),
            }
        )
        from mop_bench.lm.doctor import require_scoring_ok

        require_scoring_ok(self.lm)
        result, cost = heldout_loglik(
            self._model, examples, x_feat, self.lm, cache_path=cache_dir / f"{key}.jsonl", draws=run.metrics.heldout_samples,
            block_size=run.metrics.heldout_block, max_tokens=run.fit.score_max_tokens,
            seed=run.seed,
        )  # fmt: skip
        result["gates"] = self._diagnostics(examples, x_feat, None)
        return result, cost

    def _personas(
        self, pool: list[Example], settings: dict[str, Any]
    ) -> tuple[list[Persona], dict[str, Any]]:
        path = self.artifacts_dir / art.PERSONAS
        key = self._persona_settings_key(settings)
        saved = art.load_personas(path, key)
        if saved is not None:
            return saved, {"reused": True}
        t0 = time.perf_counter()
        personas = build_personas(
            self.spec.personas,
            self.spec.n_personas,
            pool,
            lambda: self._encode([ex.text for ex in pool]),
            lambda: self.lm,
            self.inputs.spec.fit,
            self.persona_settings,
            self.inputs.spec.seed,
        )
        art.save_personas(path, personas, key)
        cost = {"reused": False, "seconds": round(time.perf_counter() - t0, 3)}
        if self.spec.personas == "synthesized":
            cost["lm_generations"] = len(personas)
            cost["fallbacks"] = sum(p.source != "synthesized" for p in personas)
        return personas, cost

    def _record_for(
        self,
        personas: list[Persona],
        mixture: Mixture,
        gates: Any,
        settings: dict[str, Any],
    ) -> dict[str, Any]:
        taus = [round(float(t), 4) for t in gates.taus().detach()]
        return {
            "kind": "mop",
            "simulator": self.spec.name,
            "settings": settings,
            "personas": [
                {"index": i, "text": p.text, "source": p.source, "cluster_size": p.cluster_size}
                for i, p in enumerate(personas)
            ],
            "taus": taus,
            "fixed_exemplar_uids": (
                [[ex.uid for ex in slot] for slot in mixture.exemplar_slots]
                if mixture.exemplar_mode == "fixed"
                else []
            ),
            **({"picle": self._picle_record} if self._picle_record is not None else {}),
        }

    def _reuse(self, pool: list[Example], settings: dict[str, Any]) -> dict[str, Any] | None:
        fit_path = self.artifacts_dir / art.FIT
        if not fit_path.exists() or not (self.artifacts_dir / art.GATES).exists():
            return None
        record = art.read_json(fit_path)
        if record.get("settings") != settings or record.get("gates_from"):
            log.info("%s: settings changed, refitting", fit_path)
            return None
        personas = art.load_personas(self.artifacts_dir / art.PERSONAS)
        if personas is None:
            return None
        self._install(personas, pool, art.load_gates(self.artifacts_dir / art.GATES))
        return record | {"reused": True}

    def _install(self, personas: list[Persona], pool: list[Example], ckpt: dict[str, Any]) -> Any:
        from mop_bench.mop.gates import MixtureGates

        gates = MixtureGates.from_checkpoint(ckpt)
        mixture = self._mixture(personas, pool)
        if gates.config["n_personas"] != mixture.n_persona_slots:
            raise ValueError(
                f"saved gates have {gates.config['n_personas']} persona slots, "
                f"the personas file has {mixture.n_persona_slots}"
            )
        g_feat, e_feat = self._features(mixture)
        self._keep(mixture, gates, g_feat, e_feat)
        return gates

    def _load_from(
        self, source: Any, pool: list[Example], settings: dict[str, Any]
    ) -> dict[str, Any]:
        from mop_bench.mop.transfer import open_source

        # Checks (structure, encoder, task) and the content hash live in transfer.py.
        checked, src, _, ckpt = open_source(source, settings, self.spec.name)
        fit_dir, src_settings = checked.fit_dir, src["settings"]
        personas = art.load_personas(fit_dir / art.PERSONAS) or []
        gates = self._install(personas, pool, ckpt)
        out = self.artifacts_dir
        if out.resolve() != fit_dir.resolve():
            art.save_personas(out / art.PERSONAS, personas, {"gates_from": str(fit_dir)})
            art.save_gates(out / art.GATES, ckpt)
        record = self._record_for(personas, self._fitted.mixture, gates, settings)
        record |= {
            "reused": False,
            "gates_from": str(fit_dir),
            "source_simulator": src.get("simulator"),
            "source_lm": src_settings.get("lm"),
            "source_settings_digest": art.digest(src_settings),
            "gates_source": checked.to_json(),
            "train": {"trained": False, "lm_scorings": 0, "note": "gates loaded, not fitted"},
        }
        if out.resolve() != fit_dir.resolve():
            art.write_json(out / art.FIT, record)
        return record

    # ------------------------------------------------------------------ simulate
    def simulate(self, chunks: Sequence[Sequence[Context]]) -> Iterator[list[Generation]]:
        from mop_bench.mop.sample import generate_chunk

        self.prepare()
        run = self.inputs.spec
        for chunk in chunks:
            yield generate_chunk(chunk, self._fitted, self.lm, self._encode, run.budget, run.seed)
