"""Running exported models without PyTorch: :mod:`psa_pose.deploy.onnx_infer` needs only
onnxruntime, numpy and OpenCV (and imports nothing else of psa_pose, so it can be copied)."""
