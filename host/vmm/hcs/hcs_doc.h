/* The HCS v2 JSON documents of live migration and of the few compute-system calls the backend
 * makes (hcsshim-lm.md §1.6, §2.1, §2.2), written byte for byte as hcsshim's encoding/json
 * writes them, and the HCS replies the backend reads.  Pure functions over caller-owned
 * buffers; portable and unit-tested on Linux with golden JSON.
 *
 * Options documents (UTF-8 JSON appended to out):
 *   MigrationInitializeOptions   hcs_doc_init_options (InitializeOptions converted exactly as
 *                                hcsshim's parse.go, plus the Origin the controller stamps and
 *                                the CompatibilityData the destination adds)
 *   MigrationStartOptions        {"NetworkSettings":{"SessionId":N}} (source)
 *   StartOptions                 {"DestinationMigrationOptions":{"NetworkSettings":{...}}}
 *   MigrationTransferOptions,    {"Origin":"Source"|"Destination"}
 *   MigrationCancelOptions
 *   MigrationFinalizedOptions    {"Origin":...,"FinalizedOperation":"Resume"|"Stop"}
 *   the properties queries and the SCSI ModifySettingRequest documents.
 *
 * Replies (UTF-8 JSON from HCS, hostile: bounded, validated, every failure an error naming
 * what is wrong; read with Go's rules through gojson): the compatibility-info properties
 * response, the basic properties (RuntimeId) and the SystemExited event payload. */
#ifndef FERRY_HOST_VMM_HCS_DOC_H
#define FERRY_HOST_VMM_HCS_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/guid.h"
#include "host/vmm/vmm.h"

#define HCS_LIVE_MIGRATION_SOCKET_URI  "hcs:/VirtualMachine/LiveMigrationSocket"
#define HCS_RESOURCE_TYPE_SOCKET       4 /* HcsResourceTypeSocket */
#define HCS_EVENT_OPTION_LM_EVENTS     4 /* HcsEventOptionEnableLiveMigrationEvents */
#define HCS_EVENT_SYSTEM_EXITED        0x00000001u
#define HCS_EVENT_SERVICE_DISCONNECT   0x02000000u
#define HCS_EVENT_GROUP_LIVE_MIGRATION 0x80000003u
#define HCS_SCSI_CONTROLLERS           4 /* hcsshim's ScsiControllerGuids */
#define HCS_SCSI_LUNS                  64
#define HCS_REPLY_MAX                  (1u << 20)   /* longest HCS reply document read */
#define HCS_COMPAT_MAX                 (256u << 10) /* longest compatibility blob accepted */

/* hcsshim's SCSI controller GUIDs (v5 GUIDs of "0".."3" in namespace d422512d-...), the keys
 * of VirtualMachine.Devices.Scsi and of the resource paths. */
extern const char *const hcs_scsi_controller_guids[HCS_SCSI_CONTROLLERS];

/* "Source" / "Destination" (NULL for anything else). */
const char *hcs_doc_origin_name(enum vmm_origin o);

/* MigrationInitializeOptions for origin.  opts == NULL is hcsshim's nil InitializeOptions:
 * an empty document carrying only the Origin.  Otherwise memory_transport must be TCP (1):
 * any other value is -EINVAL "convert memory transport: unsupported memory transport
 * \"MEMORY_TRANSPORT_UNSPECIFIED\"" (the enum's name, or its number when it has none), as
 * parse.go words it.  minimum_throttle_percentage is truncated to uint8 (300 -> 44); a NaN or
 * infinite throttling_scale is -EINVAL (Go's Marshal refuses it).  compat (may be NULL or
 * empty: then omitted) becomes CompatibilityData.Data, base64.  Nothing is appended on error. */
int hcs_doc_init_options(struct buf *out, const struct vmm_mig_options *opts,
                         enum vmm_origin origin, const uint8_t *compat, size_t compat_len,
                         struct err *e);
/* Source start (destination: false) or the destination's StartOptions (true).  SessionId is
 * omitted when 0 (Go's omitempty). */
void hcs_doc_start_options(struct buf *out, uint32_t session, bool destination);
/* MigrationTransferOptions / MigrationCancelOptions. */
void hcs_doc_origin_options(struct buf *out, enum vmm_origin origin);
void hcs_doc_finalize_options(struct buf *out, enum vmm_origin origin, bool resume);
/* PropertiesV3 query for the compatibility blob: {"Queries":{"CompatibilityInfo":null}}. */
void hcs_doc_compat_query(struct buf *out);
/* The basic properties query: {} (the reply carries Id, RuntimeId, State...). */
void hcs_doc_basic_query(struct buf *out);
/* ModifySettingRequest adding disk at (controller, lun), or removing it (disk NULL):
 * {"ResourcePath":"VirtualMachine/Devices/Scsi/<guid>/Attachments/<lun>","RequestType":"Add",
 *  "Settings":{"Type":"VirtualDisk","Path":"...","ReadOnly":true}}.  -EINVAL for a controller
 * >= 4, a lun >= 64, an empty path or an unknown type. */
int hcs_doc_scsi_modify(struct buf *out, unsigned controller, unsigned lun,
                        const struct vmm_disk *disk, struct err *e);

/* The compatibility blob from a properties reply:
 * {"PropertyResponses":{"CompatibilityInfo":{"Response":{"Data":"<base64>"}}}}, appended to
 * blob.  Missing or empty is an error (as hcsshim's CompatibilityInfo), as is an "Error" in
 * the response, bad base64 (Go's StdEncoding: padding required, CR and LF skipped) or a blob
 * larger than HCS_COMPAT_MAX. */
int hcs_doc_compat_reply(const char *json, size_t n, struct buf *blob, struct err *e);
/* RuntimeId (the VM's GUID, the hvsock VmId) from a basic properties reply. */
int hcs_doc_runtime_id(const char *json, size_t n, struct guid *id, struct err *e);
/* A SystemExited payload ({"Status":<HRESULT>,"ExitType":"..."}): *status gets the HRESULT
 * (0 when absent or the payload is empty).  A payload that does not decode is -EINVAL; the
 * caller still treats the VM as gone. */
int hcs_doc_exit_status(const char *json, size_t n, uint32_t *status, struct err *e);

#endif
