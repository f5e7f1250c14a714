"""The fitting stages: landmarks first, then everything through the renderer."""
