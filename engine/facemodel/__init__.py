"""The face model: importer and torch module."""

from engine.facemodel.model import FaceModel, load_face_model

__all__ = ["FaceModel", "load_face_model"]
