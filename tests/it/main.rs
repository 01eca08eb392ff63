mod boot;
