#!/usr/bin/env bash
# The GPU check, run on a machine with CUDA (the device tool's machines: Python 3.12 with
# torch, numpy, scipy, scikit-image, pillow; no MediaPipe or dlib). It needs, in .devcarry/:
#   ict/                 the shared ICT-FaceKit compact copy (../shared/assets/ict-facekit)
#   face_recognition_models/__init__.py + models/dlib_face_recognition_resnet_model_v1.dat
#   astronaut_result.json  a CPU run's result.json (its landmarks stand in for detection)
# It imports the face model with the engine's own importer, then prints the renderer
# benchmark and the per-stage timings of each preset on the GPU.
set -euxo pipefail
export PYTHONPATH=$PWD:$PWD/.devcarry GANFIT_HOME=/tmp/ganfit PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
python3 .devcarry/ict/materialize.py /tmp/ict >/dev/null
python3 -m engine assets fetch --from /tmp/ict/FaceXModel
python3 benchmarks/bench_render.py --device cuda
python3 benchmarks/bench_fit.py --device cuda --landmarks .devcarry/astronaut_result.json
