"""The result's normal, roughness and AO maps wired into a skin material's Principled BSDF,
in the node layout Blender's glTF exporter reads back as glTF's normalTexture,
metallicRoughnessTexture (roughness in G) and occlusionTexture: image -> Normal Map node ->
Normal; image -> Separate Color (G) -> Roughness; image -> Separate Color (R) -> the
"glTF Material Output" group's Occlusion (the node Blender's glTF add-on defines for
what the BSDF has no input for). The FBX exporter writes the normal map too.
"""

import bpy

GLTF_OUTPUT = "glTF Material Output"  # the name io_scene_gltf2 looks for


def _gltf_output_group() -> bpy.types.NodeTree:
    """The glTF add-on's settings node group (its Occlusion input), made once per file."""
    group = bpy.data.node_groups.get(GLTF_OUTPUT)
    if group is None:
        group = bpy.data.node_groups.new(GLTF_OUTPUT, "ShaderNodeTree")
        for socket in ("Occlusion", "Thickness"):
            if hasattr(group, "interface"):  # Blender 4.0+
                group.interface.new_socket(socket, socket_type="NodeSocketFloat")
            else:
                group.inputs.new("NodeSocketFloat", socket)
        group.nodes.new("NodeGroupOutput")
        group.nodes.new("NodeGroupInput").location = (-200, 0)
    return group


def _image_node(nodes, image: bpy.types.Image, x: float, y: float):
    image.colorspace_settings.name = "Non-Color"
    node = nodes.new("ShaderNodeTexImage")
    node.image = image
    node.location = (x, y)
    return node


def _image_channel(material: bpy.types.Material, image: bpy.types.Image, channel: str,
                   x: float, y: float):
    """One channel ("Red", "Green", ...) of a data image as a socket: image -> Separate
    Color, the layout the glTF exporter recognises for packed maps."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    split = nodes.new("ShaderNodeSeparateColor")
    split.location = (x + 300, y)
    links.new(_image_node(nodes, image, x, y).outputs["Color"], split.inputs["Color"])
    return split.outputs[channel]


def wire_maps(material: bpy.types.Material, maps: dict[str, bpy.types.Image]) -> None:
    """Connect the maps present in `maps` (roles "normal", "roughness", "ao") to the
    material's Principled BSDF (which must exist)."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    x, y = bsdf.location.x - 700, bsdf.location.y
    if "roughness" in maps:
        links.new(_image_channel(material, maps["roughness"], "Green", x, y - 300),
                  bsdf.inputs["Roughness"])
    if "normal" in maps:
        image = _image_node(nodes, maps["normal"], x, y - 600)
        normal_map = nodes.new("ShaderNodeNormalMap")
        normal_map.location = (x + 300, y - 600)
        links.new(image.outputs["Color"], normal_map.inputs["Color"])
        links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
    if "ao" in maps:
        output = nodes.new("ShaderNodeGroup")
        output.node_tree = _gltf_output_group()
        output.location = (x + 550, y - 900)
        links.new(_image_channel(material, maps["ao"], "Red", x, y - 900),
                  output.inputs["Occlusion"])
