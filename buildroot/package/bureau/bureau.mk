################################################################################
#
# bureau: built from this repository (the tree above buildroot/) with Buildroot's
# cargo-package infrastructure.
#
################################################################################

# Fetched with git from this repository at its checked-out commit, so only what git tracks
# comes (not target/, gigabytes of build output), and cargo-package vendors the crates at
# download time, as for any downloaded package; it passes --locked itself.
BUREAU_VERSION = $(shell git -C $(BR2_EXTERNAL_BUREAU_PATH)/.. rev-parse HEAD)
BUREAU_SITE = $(BR2_EXTERNAL_BUREAU_PATH)/..
BUREAU_SITE_METHOD = git
BUREAU_LICENSE = AGPL-3.0-or-later
BUREAU_SUBDIR = services/bureau

# The account bureau serve runs as (the root filesystem is read-only: made at build time).
define BUREAU_USERS
	bureau -1 bureau -1 * /var/lib/bureau - - Bureau groupware
endef

$(eval $(cargo-package))
