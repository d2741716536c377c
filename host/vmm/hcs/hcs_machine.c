/* The hcs machine description: validation, the destination's document, SCSI bookkeeping
 * (see hcs_machine.h). */
#include "host/vmm/hcs/hcs_machine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "host/vmm/hcs/hcs_doc.h"

int hcs_machine_parse(const json_t *machine, const char **id, const json_t **doc, struct err *e)
{
	if (!json_is_object(machine))
		return err_set(e, -EINVAL, "hcs machine description: not a JSON object");
	const json_t *jid = json_object_get(machine, "Id");
	const json_t *jdoc = json_object_get(machine, "ComputeSystem");
	if (!json_is_string(jid) || json_string_length(jid) == 0 ||
	    json_string_length(jid) > HCS_MACHINE_ID_MAX ||
	    strlen(json_string_value(jid)) != json_string_length(jid))
		return err_set(e, -EINVAL,
		               "hcs machine description: Id must be a non-empty string of at most "
		               "%d bytes",
		               HCS_MACHINE_ID_MAX);
	if (!json_is_object(jdoc))
		return err_set(e, -EINVAL,
		               "hcs machine description: ComputeSystem must be a JSON object");
	if (!json_is_object(json_object_get(jdoc, "VirtualMachine")))
		return err_set(e, -EINVAL,
		               "hcs machine description: the ComputeSystem document has no "
		               "VirtualMachine");
	*id = json_string_value(jid);
	*doc = jdoc;
	return 0;
}

json_t *hcs_machine_new(const char *id, const json_t *doc)
{
	return json_pack("{s:s, s:o}", "Id", id, "ComputeSystem", json_deep_copy(doc));
}

json_t *hcs_machine_dest_doc(const json_t *doc, const char *opts, size_t n, struct err *e)
{
	json_error_t je;
	json_t *o = json_loadb(opts, n, 0, &je);
	if (!json_is_object(o)) {
		json_decref(o);
		err_set(e, -EINVAL, "migration options are not a JSON object: %s", je.text);
		return NULL;
	}
	json_t *copy = json_deep_copy(doc);
	json_t *vm = json_object_get(copy, "VirtualMachine");
	if (!json_is_object(vm)) {
		json_decref(o);
		json_decref(copy);
		err_set(e, -EINVAL, "the ComputeSystem document has no VirtualMachine");
		return NULL;
	}
	json_object_set_new(vm, "MigrationOptions", o);
	return copy;
}

/* obj[key] as an object, created when absent (replacing a non-object). */
static json_t *child(json_t *obj, const char *key)
{
	json_t *c = json_object_get(obj, key);
	if (!json_is_object(c)) {
		c = json_object();
		json_object_set_new(obj, key, c);
	}
	return c;
}

int hcs_machine_scsi_set(json_t *doc, unsigned controller, unsigned lun,
                         const struct vmm_disk *disk, struct err *e)
{
	if (controller >= HCS_SCSI_CONTROLLERS || lun >= HCS_SCSI_LUNS)
		return err_set(e, -EINVAL, "scsi %u:%u out of range", controller, lun);
	json_t *vm = json_object_get(doc, "VirtualMachine");
	if (!json_is_object(vm))
		return err_set(e, -EINVAL, "the ComputeSystem document has no VirtualMachine");
	char key[12];
	snprintf(key, sizeof(key), "%u", lun);
	json_t *scsi = child(child(vm, "Devices"), "Scsi");
	json_t *ctrl = child(scsi, hcs_scsi_controller_guids[controller]);
	json_t *att = child(ctrl, "Attachments");
	if (!disk) {
		json_object_del(att, key);
		return 0;
	}
	json_t *a = json_pack("{s:s, s:s}", "Type", disk->type ? disk->type : "VirtualDisk", "Path",
	                      disk->host_path);
	if (disk->read_only)
		json_object_set_new(a, "ReadOnly", json_true());
	json_object_set_new(att, key, a);
	return 0;
}

int hcs_machine_each_disk(const json_t *doc, int (*fn)(const char *path, void *arg), void *arg)
{
	const json_t *scsi = json_object_get(
	    json_object_get(json_object_get(doc, "VirtualMachine"), "Devices"), "Scsi");
	const char *ck, *ak;
	json_t *ctrl, *a;
	json_object_foreach((json_t *)scsi, ck, ctrl)
	{
		json_object_foreach(json_object_get(ctrl, "Attachments"), ak, a)
		{
			const char *type = json_string_value(json_object_get(a, "Type"));
			const char *path = json_string_value(json_object_get(a, "Path"));
			if (!path || !type ||
			    (strcmp(type, "VirtualDisk") != 0 && strcmp(type, "PassThru") != 0))
				continue;
			int r = fn(path, arg);
			if (r < 0)
				return r;
		}
	}
	return 0;
}
