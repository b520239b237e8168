// Shared by every Tessera compute shader.
#extension GL_EXT_control_flow_attributes : enable

// The flat workgroup index when a dispatch spreads its groups over x and y (see groups_for()).
uint flat_group() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }
