# The guest image (docs/vm-image.md), included by the Makefile.  `make vm-image` builds and
# caches it under $(BUILD)/vm-image: kernel/<version>/ (vmlinux and modules, from the Debian
# kernel package vm-images/kernel.sh resolves and fetches once), vmlinux (a link to the
# current one) and initrd.cpio (vm-images/mkinitramfs.sh).  Nothing is redone when nothing
# changed: the kernel step runs when its script is newer than its stamp (kernel/current), the
# initramfs when ferry-gcs, /init, the module list, its script, crun or busybox changed.
VM_IMAGE := $(BUILD)/vm-image
VM_KERNEL_OUT := $(VM_IMAGE)/kernel
VM_INITRD := $(VM_IMAGE)/initrd.cpio
VM_HOST_BINS := $(wildcard /usr/bin/crun /bin/busybox)

.PHONY: vm-image
vm-image: $(VM_INITRD)

$(VM_KERNEL_OUT)/current: vm-images/kernel.sh
	@mkdir -p $(VM_KERNEL_OUT)
	$(Q)sh vm-images/kernel.sh $(VM_KERNEL_OUT)
	$(Q)ln -sfn kernel/$$(cat $@)/vmlinux $(VM_IMAGE)/vmlinux

$(VM_INITRD): $(VM_KERNEL_OUT)/current $(BUILD)/ferry-gcs vm-images/init vm-images/modules.list \
		vm-images/mkinitramfs.sh $(VM_HOST_BINS)
	@$(if $(V),,echo "  CPIO    $@")
	$(Q)sh vm-images/mkinitramfs.sh $(VM_KERNEL_OUT) $(BUILD)/ferry-gcs $@
