"""The MLPerf Tiny reference models, known by content: SHA-256 → the benchmark's model id.

A board answers ``profile%`` with ``m-model-[<id>]``; the MLPerf Tiny host runner picks its test
script by that id. The virtual board answers the id for the reference ``.tflite`` files of
mlcommons/tiny (``benchmark/training/*/trained_models/``, int8 and float), whatever their file
name, and the file's stem for any other model. Only the hashes ship here, not the models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: The four MLPerf Tiny benchmarks with published latencies (the estimator's calibration).
BENCHMARKS = ("kws", "vww", "ic", "ad")
#: Their int8 reference models' file names (as in ``../shared/models/mlperf_tiny``).
REFERENCE_FILES = {"kws": "kws_ref_model_int8.tflite", "vww": "vww_96_int8.tflite",
                   "ic": "ic_resnet8_int8.tflite", "ad": "ad01_int8.tflite"}
#: SHA-256 of each reference model → its id (``EE_MODEL_VERSION_*`` of the MLPerf Tiny API).
MODEL_IDS: dict[str, str] = {
    # keyword_spotting: kws_ref_model.tflite (int8), kws_ref_model_float32.tflite
    "aeea436800704fce17b17292e4412630ad856e9d777c044c64ef748a880bd0ae": "kws01",
    "e5004c6f1012246e33fa068d8488325538e0444073cd361f5a7edb40c73f12d2": "kws01",
    # visual_wake_words: vww_96_int8.tflite, vww_96_float.tflite
    "597a384c8c2c8a1276f04702f25013b7838f2f814f1ca7c174d295b73e3d6b7b": "vww01",
    "115bbc094d2119561320a21f01b6500a18bea8cc8589282ab007097bec8af38c": "vww01",
    # image_classification: pretrainedResnet_quant.tflite (int8), pretrainedResnet.tflite
    "3c002613d1b2475eb51dd78dfb85a546c8ae658dee71cf6ade43b022fe205415": "ic01",
    "b5c0046d6e0328b4956afd6baa29555a29b1f1c65bdd45aaed75b7cd484d9f79": "ic01",
    # anomaly_detection: ad01_int8.tflite, ad01_fp32.tflite
    "87cf24194ef93d1d9b11a591d805526b98008e351655d29883c825c9c106ba24": "ad01",
    "c66636f4d7f8af8b10518e7be750a22c9d8d46ec97326b40b0d94c097e0aad9b": "ad01",
    # streaming_wakeword: str_ww_ref_model.tflite
    "3af8550895ba7d5c584277102b5075c52dcfa63ba9d2b2240f37c4e6abd5dd2b": "strww01",
}


def model_id(data: bytes, path: Path | str) -> str:
    """The reference model id of ``data``, else the stem of ``path`` (the default)."""
    return MODEL_IDS.get(hashlib.sha256(data).hexdigest(), Path(path).stem)
