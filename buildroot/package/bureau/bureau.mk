################################################################################
#
# bureau: built from this repository (the tree above buildroot/) with Buildroot's
# cargo-package infrastructure, which vendors the crates at download time.
#
################################################################################

BUREAU_VERSION = local
BUREAU_SITE = $(BR2_EXTERNAL_BUREAU_PATH)/..
BUREAU_SITE_METHOD = local
BUREAU_LICENSE = AGPL-3.0-or-later
BUREAU_SUBDIR = services/bureau
BUREAU_CARGO_BUILD_OPTS = --locked
BUREAU_CARGO_INSTALL_OPTS = --locked


# The account bureau serve runs as (the root filesystem is read-only: made at build time).
define BUREAU_USERS
	bureau -1 bureau -1 * /var/lib/bureau - - Bureau groupware
endef

$(eval $(cargo-package))
