/* ModifySettings resource types and the typed Settings documents the Linux GCS understands
 * (bridge/msg.h, ../shared/spec/gcs-bridge.md §4.4 table): name lookup, which names Linux
 * rejects, and field tables run through the msg_json.c engine for decode and encode. */
#include "bridge/msg.h"

#include <errno.h>
#include <string.h>

#include "bridge/msg_schema.h"
#include "common/xalloc.h"

#define T struct bridge_mapped_virtual_disk
static const struct msg_field mvd_f[] = {
    MF(T, mount_path, "MountPath", FT_STR, F_OMIT),
    MF(T, lun, "Lun", FT_U8, F_OMIT),
    MF(T, controller, "Controller", FT_U8, F_OMIT),
    MF(T, partition, "Partition", FT_U64, F_OMIT),
    MF(T, read_only, "ReadOnly", FT_BOOL, F_OMIT),
    MF(T, encrypted, "Encrypted", FT_BOOL, F_OMIT),
    MF_N(T, options, "Options", FT_STRV, F_OMIT, NULL),
    MF(T, block_dev, "BlockDev", FT_BOOL, F_OMIT),
    MF(T, verity_info, "VerityInfo", FT_JSON, F_OMIT),
    MF(T, ensure_filesystem, "EnsureFilesystem", FT_BOOL, F_OMIT),
    MF(T, filesystem, "Filesystem", FT_STR, F_OMIT),
};
MSG_SCHEMA(mvd_s, "MappedVirtualDisk", T, mvd_f);
#undef T

#define T struct bridge_scsi_device
static const struct msg_field scsi_f[] = {
    MF(T, controller, "Controller", FT_U8, F_OMIT),
    MF(T, lun, "Lun", FT_U8, F_OMIT),
};
MSG_SCHEMA(scsi_s, "SCSIDevice", T, scsi_f);
#undef T

#define T struct bridge_mapped_directory
static const struct msg_field mdir_f[] = {
    MF(T, mount_path, "MountPath", FT_STR, F_OMIT),
    MF(T, port, "Port", FT_I32, F_OMIT),
    MF(T, share_name, "ShareName", FT_STR, F_OMIT),
    MF(T, read_only, "ReadOnly", FT_BOOL, F_OMIT),
};
MSG_SCHEMA(mdir_s, "MappedDirectory", T, mdir_f);
#undef T

#define T struct bridge_vpmem_device
static const struct msg_field vpmem_mapping_f[] = {
    MF(T, mapping_info.device_offset_in_bytes, "DeviceOffsetInBytes", FT_U64, F_OMIT),
    MF(T, mapping_info.device_size_in_bytes, "DeviceSizeInBytes", FT_U64, F_OMIT),
};
MSG_SCHEMA(vpmem_mapping_s, "MappingInfo", T, vpmem_mapping_f);

static const struct msg_field vpmem_f[] = {
    MF(T, device_number, "DeviceNumber", FT_U32, F_OMIT),
    MF(T, mount_path, "MountPath", FT_STR, F_OMIT),
    MF_HAS(T, has_mapping_info, "MappingInfo", F_OMIT, &vpmem_mapping_s),
    MF(T, verity_info, "VerityInfo", FT_JSON, F_OMIT),
};
MSG_SCHEMA(vpmem_s, "VPMemDevice", T, vpmem_f);
#undef T

#define T struct bridge_layer
static const struct msg_field layer_f[] = {
    MF(T, id, "Id", FT_STR, F_OMIT),
    MF(T, path, "Path", FT_STR, F_OMIT),
    MF(T, path_type, "PathType", FT_STR, F_OMIT),
    MF(T, cache, "Cache", FT_STR, F_OMIT),
};
MSG_SCHEMA(layer_s, "Layer", T, layer_f);
#undef T

#define T struct bridge_combined_layers
static const struct msg_field layers_f[] = {
    MF(T, container_id, "ContainerID", FT_STR, F_OMIT),
    MF(T, container_root_path, "ContainerRootPath", FT_STR, F_OMIT),
    MF_N(T, layers, "Layers", FT_OBJV, F_OMIT, &layer_s),
    MF(T, scratch_path, "ScratchPath", FT_STR, F_OMIT),
};
MSG_SCHEMA(layers_s, "CombinedLayers", T, layers_f);
#undef T

#define T struct bridge_ip_config
static const struct msg_field ipcfg_f[] = {
    MF(T, ip_address, "IPAddress", FT_STR, F_OMIT),
    MF(T, prefix_length, "PrefixLength", FT_U8, F_OMIT),
};
MSG_SCHEMA(ipcfg_s, "IPConfig", T, ipcfg_f);
#undef T

#define T struct bridge_route
static const struct msg_field route_f[] = {
    MF(T, next_hop, "NextHop", FT_STR, F_OMIT),
    MF(T, destination_prefix, "DestinationPrefix", FT_STR, F_OMIT),
    MF(T, metric, "Metric", FT_U16, F_OMIT),
};
MSG_SCHEMA(route_s, "Route", T, route_f);
#undef T

#define T struct bridge_network_adapter
static const struct msg_field net_f[] = {
    MF(T, namespace_id, "NamespaceID", FT_STR, F_OMIT),
    MF(T, id, "ID", FT_STR, F_OMIT),
    MF(T, mac_address, "MacAddress", FT_STR, F_OMIT),
    MF(T, dns_suffix, "DNSSuffix", FT_STR, F_OMIT),
    MF(T, dns_server_list, "DNSServerList", FT_STR, F_OMIT),
    MF(T, encap_overhead, "EncapOverhead", FT_U16, F_OMIT),
    MF(T, vpci_assigned, "VPCIAssigned", FT_BOOL, F_OMIT),
    MF_N(T, ip_configs, "IPConfigs", FT_OBJV, F_OMIT, &ipcfg_s),
    MF_N(T, routes, "Routes", FT_OBJV, F_OMIT, &route_s),
    MF(T, policy_based_routing, "PolicyBasedRouting", FT_BOOL, F_OMIT),
    MF(T, enable_low_metric, "EnableLowMetric", FT_BOOL, F_OMIT),
};
MSG_SCHEMA(net_s, "Network", T, net_f);
#undef T

#define T struct bridge_vpci_device
static const struct msg_field vpci_f[] = {
    MF(T, vmbus_guid, "VMBusGUID", FT_STR, F_OMIT),
};
MSG_SCHEMA(vpci_s, "VPCIDevice", T, vpci_f);
#undef T

#define T struct bridge_container_constraints
static const struct msg_field constraints_f[] = {
    MF(T, windows, "Windows", FT_JSON, F_EMPTYOBJ),
    MF(T, linux_resources, "Linux", FT_JSON, F_OMIT),
};
MSG_SCHEMA(constraints_s, "ContainerConstraints", T, constraints_f);
#undef T

#define T struct bridge_security_policy
static const struct msg_field policy_f[] = {
    MF(T, enforcer_type, "EnforcerType", FT_STR, F_OMIT),
    MF(T, encoded_security_policy, "EncodedSecurityPolicy", FT_STR, F_OMIT),
    MF(T, encoded_uvm_reference, "EncodedUVMReference", FT_STR, F_OMIT),
    MF(T, encoded_uvm_hash_envelope_reference, "EncodedUVMHashEnvelopeReference", FT_STR, F_OMIT),
};
MSG_SCHEMA(policy_s, "SecurityPolicy", T, policy_f);
#undef T

#define T struct bridge_policy_fragment
static const struct msg_field fragment_f[] = {
    MF(T, fragment, "Fragment", FT_STR, F_OMIT),
    MF(T, media_type, "MediaType", FT_STR, F_OMIT),
};
MSG_SCHEMA(fragment_s, "SecurityPolicyFragment", T, fragment_f);
#undef T

static const struct {
	const char *name;
	const struct msg_schema *s;
	bool linux_ok;
} resources[BRES_COUNT] = {
    [BRES_UNKNOWN] = {"", NULL, false},
    [BRES_MAPPED_VIRTUAL_DISK] = {"MappedVirtualDisk", &mvd_s, true},
    [BRES_SCSI_DEVICE] = {"SCSIDevice", &scsi_s, true},
    [BRES_MAPPED_DIRECTORY] = {"MappedDirectory", &mdir_s, true},
    [BRES_VPMEM_DEVICE] = {"VPMemDevice", &vpmem_s, true},
    [BRES_COMBINED_LAYERS] = {"CombinedLayers", &layers_s, true},
    [BRES_NETWORK] = {"Network", &net_s, true},
    [BRES_VPCI_DEVICE] = {"VPCIDevice", &vpci_s, true},
    [BRES_CONTAINER_CONSTRAINTS] = {"ContainerConstraints", &constraints_s, true},
    [BRES_SECURITY_POLICY] = {"SecurityPolicy", &policy_s, true},
    [BRES_SECURITY_POLICY_FRAGMENT] = {"SecurityPolicyFragment", &fragment_s, true},
    [BRES_POD_CGROUP_MEMORY_LIMIT] = {"PodCgroupMemoryLimit", NULL, true},
    [BRES_NETWORK_NAMESPACE] = {"NetworkNamespace", NULL, false},
    [BRES_HV_SOCKET] = {"HvSocket", NULL, false},
    [BRES_MAPPED_VIRTUAL_DISK_FOR_CONTAINER_SCRATCH] = {"MappedVirtualDiskForContainerScratch",
                                                        NULL, false},
    [BRES_WCOW_BLOCK_CIMS] = {"WCOWBlockCims", NULL, false},
    [BRES_CWCOW_COMBINED_LAYERS] = {"CWCOWCombinedLayers", NULL, false},
};

static const struct msg_schema *settings_schema(enum bridge_resource r)
{
	return (unsigned)r < BRES_COUNT ? resources[r].s : NULL;
}

enum bridge_resource bridge_resource_parse(const char *name)
{
	if (!name || !*name)
		return BRES_UNKNOWN;
	for (int r = 1; r < BRES_COUNT; r++)
		if (strcmp(resources[r].name, name) == 0)
			return (enum bridge_resource)r;
	return BRES_UNKNOWN;
}

const char *bridge_resource_name(enum bridge_resource r)
{
	return (unsigned)r < BRES_COUNT ? resources[r].name : "";
}

bool bridge_resource_linux_supported(enum bridge_resource r)
{
	return (unsigned)r < BRES_COUNT && resources[r].linux_ok;
}

size_t bridge_settings_struct_size(enum bridge_resource r)
{
	const struct msg_schema *s = settings_schema(r);
	return s ? s->size : 0;
}

int bridge_settings_decode(enum bridge_resource r, const json_t *settings, void *out, struct err *e)
{
	const struct msg_schema *s = settings_schema(r);
	if (!s)
		return err_set(e, -ENOTSUP, "resource type \"%s\" has no settings",
		               bridge_resource_name(r));
	return msg_decode_json(s, settings, out, e);
}

int bridge_modify_req_settings(const struct bridge_modify_req *req, void *out, struct err *e)
{
	enum bridge_resource r = bridge_resource_parse(req->resource_type);
	if (r == BRES_UNKNOWN)
		return err_set(e, -ENOTSUP, "ModifySettings: invalid ResourceType \"%s\"",
		               req->resource_type ? req->resource_type : "");
	int rc = bridge_settings_decode(r, req->settings, out, e);
	return rc < 0 ? err_prefix(e, "ModifySettings") : 0;
}

json_t *bridge_settings_to_json(enum bridge_resource r, const void *in)
{
	const struct msg_schema *s = settings_schema(r);
	if (!s)
		return NULL;
	struct buf b;
	buf_init(&b);
	msg_encode(s, in, true, &b);
	json_t *v = json_loadb((const char *)buf_head(&b), buf_avail(&b), 0, NULL);
	buf_fini(&b);
	return v;
}

void bridge_settings_fini(enum bridge_resource r, void *p)
{
	const struct msg_schema *s = settings_schema(r);
	if (s && p)
		msg_fini(s, p);
}
