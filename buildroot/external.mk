include $(sort $(wildcard $(BR2_EXTERNAL_BUREAU_PATH)/package/*/*.mk))
